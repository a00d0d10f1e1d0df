package swin

// Window bookkeeping of shifted_window_attention (torchvision): the maps are
// padded to a multiple of the window, cyclically shifted by −shift, cut
// into windows (row-major over windows, then row-major inside each), and put
// back the same way after the attention. Each of those moves is a row
// permutation of the (B·H·W, C) token matrix, done by one GatherRows; a
// padded position reads the zero row a padded source carries at index 0.

// relativePositionIndex is define_relative_position_index for a ws×ws
// window: entry i·N + j indexes the bias table for query i, key j.
func relativePositionIndex(ws int) []int {
	N := ws * ws
	idx := make([]int, N*N)
	for i := 0; i < N; i++ {
		for j := 0; j < N; j++ {
			dh := i/ws - j/ws + ws - 1
			dw := i%ws - j%ws + ws - 1
			idx[i*N+j] = dh*(2*ws-1) + dw
		}
	}
	return idx
}

// relativeBias is _get_relative_position_bias: (h, N, N) from a table
// ((2ws−1)², h).
func relativeBias(table []float32, ws, heads int) []float32 {
	N := ws * ws
	idx := relativePositionIndex(ws)
	out := make([]float32, heads*N*N)
	for h := 0; h < heads; h++ {
		for k, t := range idx {
			out[h*N*N+k] = table[t*heads+h]
		}
	}
	return out
}

// pySlice resolves Python's [lo:hi] on a length-n axis (hi nil: to the end).
func pySlice(lo int, hi *int, n int) (int, int) {
	fix := func(v int) int {
		if v < 0 {
			v += n
		}
		return min(max(v, 0), n)
	}
	a, b := fix(lo), n
	if hi != nil {
		b = fix(*hi)
	}
	return a, max(a, b)
}

// shiftMask is the attention mask of a shifted block on a padded map of
// side p: (nW, N, N), 0 where query and key lie in the same region of the
// rolled map and MaskValue where not. Regions are torchvision's slices
// (0, −ws), (−ws, −shift), (−shift, None) on each axis.
func shiftMask(p, ws, shift int) []float32 {
	label := make([]int, p*p)
	type pyRange struct {
		lo int
		hi *int // nil: None
	}
	negWs, negShift := -ws, -shift
	ranges := [3]pyRange{{0, &negWs}, {-ws, &negShift}, {-shift, nil}}
	count := 0
	for _, hr := range ranges {
		y0, y1 := pySlice(hr.lo, hr.hi, p)
		for _, wr := range ranges {
			x0, x1 := pySlice(wr.lo, wr.hi, p)
			for y := y0; y < y1; y++ {
				for x := x0; x < x1; x++ {
					label[y*p+x] = count
				}
			}
			count++
		}
	}
	n := p / ws
	N := ws * ws
	mask := make([]float32, n*n*N*N)
	win := make([]int, N)
	for w := 0; w < n*n; w++ {
		wy, wx := w/n, w%n
		for k := range win {
			win[k] = label[(wy*ws+k/ws)*p+wx*ws+k%ws]
		}
		m := mask[w*N*N:][:N*N]
		for i := 0; i < N; i++ {
			for j := 0; j < N; j++ {
				if win[i] != win[j] {
					m[i*N+j] = MaskValue
				}
			}
		}
	}
	return mask
}

// windowRows maps the window layout (B·nW·N rows) to source rows of a
// (B·s·s) map padded to side p and rolled by −shift: each entry is a row of
// the source with a zero row prepended (index 0), so a padded position is 0
// and map row r is r+1 — unless pad is false (no padding), when rows are
// used as they are.
func windowRows(B, s, p, ws, shift int, pad bool) []int {
	n, N := p/ws, ws*ws
	rows := make([]int, 0, B*n*n*N)
	off := 0
	if pad {
		off = 1
	}
	for b := 0; b < B; b++ {
		for w := 0; w < n*n; w++ {
			wy, wx := w/n, w%n
			for k := 0; k < N; k++ {
				y := (wy*ws + k/ws + shift) % p
				x := (wx*ws + k%ws + shift) % p
				if y >= s || x >= s {
					rows = append(rows, 0) // the zero row (only when padded)
					continue
				}
				rows = append(rows, b*s*s+y*s+x+off)
			}
		}
	}
	return rows
}

// unwindowRows is the way back: for each map token (b, y, x), its row in
// the window layout after rolling by +shift and cutting the padding off.
func unwindowRows(B, s, p, ws, shift int) []int {
	n, N := p/ws, ws*ws
	rows := make([]int, 0, B*s*s)
	for b := 0; b < B; b++ {
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				py, px := ((y-shift)%p+p)%p, ((x-shift)%p+p)%p
				rows = append(rows, (b*n*n+(py/ws)*n+px/ws)*N+(py%ws)*ws+px%ws)
			}
		}
	}
	return rows
}

// mergeRows is _patch_merging_pad's gather: for each output token (b, y, x)
// of the (ceil(s/2))² map, the four sources (2y,2x), (2y+1,2x), (2y,2x+1),
// (2y+1,2x+1) in torch.cat's order; with pad (odd s) rows refer to a source
// with a zero row prepended, and positions beyond the map read it.
func mergeRows(B, s int, pad bool) []int {
	o := (s + 1) / 2
	off := 0
	if pad {
		off = 1
	}
	rows := make([]int, 0, B*o*o*4)
	for b := 0; b < B; b++ {
		for y := 0; y < o; y++ {
			for x := 0; x < o; x++ {
				for _, d := range [4][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
					yy, xx := 2*y+d[0], 2*x+d[1]
					if yy >= s || xx >= s {
						rows = append(rows, 0)
						continue
					}
					rows = append(rows, b*s*s+yy*s+xx+off)
				}
			}
		}
	}
	return rows
}
