package cuda

// TokenBucket is the multiple a trimmed step's context is rounded up to:
// iNat captions trimmed to their longest give a new context nearly every
// step, and each new shape would mean new GEMM plans, a new arena layout and
// a new CUDA graph; in multiples of 8 a run sees a handful (causal
// attention and end-of-text pooling make the extra positions inert).
const TokenBucket = 8

// PlanBatch is a step's text side from each batch row's caption row capOf
// (B of them) and its image rows (kept as given):
//
//   - dedup: each distinct caption encoded once (DESIGN.md decision 5), the
//     count rounded up to a multiple of B/8 with copies of the first
//     caption that no row uses (their gradient is exactly zero), so the
//     caption count takes one of 8 values; when the rounded count reaches
//     B every row is encoded as is, without a row map;
//   - trim: T is the longest caption's length rounded up to TokenBucket,
//     at most the table's width; else the table's width.
func (c *DeviceCaptions) PlanBatch(rows, capOf []int32, dedup, trim bool) LiTBatch {
	B := len(capOf)
	bt := LiTBatch{Rows: rows, Distinct: B}
	if dedup {
		seen := make(map[int32]int32, B)
		rowcap := make([]int32, B)
		var caps []int32
		for b, k := range capOf {
			u, ok := seen[k]
			if !ok {
				u = int32(len(caps))
				seen[k] = u
				caps = append(caps, k)
			}
			rowcap[b] = u
		}
		bt.Distinct = len(caps)
		bucket := max(1, B/8)
		if padded := (len(caps) + bucket - 1) / bucket * bucket; padded < B {
			for len(caps) < padded {
				caps = append(caps, caps[0])
			}
			bt.Caps, bt.RowCap = caps, rowcap
		}
	}
	if bt.Caps == nil {
		bt.Caps = append([]int32(nil), capOf...)
	}
	bt.T = c.T
	if trim {
		n := 1
		for _, k := range bt.Caps {
			n = max(n, c.lens[k])
		}
		bt.T = min((n+TokenBucket-1)/TokenBucket*TokenBucket, c.T)
	}
	return bt
}
