package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
)

// LiTBatch is one step's data: indices into the resident tables.
type LiTBatch struct {
	// Rows are the batch's B image rows in the training table.
	Rows []int32
	// Caps are the caption rows to encode (U ≤ B); RowCap gives each batch
	// row its encoded caption (position in Caps). With RowCap nil, row b
	// pairs with Caps[b] (U = B). Batch rows are positives of each other's
	// only when they are the same row: labels are 0..B-1.
	Caps, RowCap []int32
	// T is the tokens run: at least every caption's length, at most the
	// context; a multiple of 8 (PlanBatch's buckets) keeps the step shapes,
	// and so the arena's layouts and CUDA graphs, few.
	T int
	// Distinct is the number of distinct captions among the rows (for the
	// step's statistics; Caps may hold padding copies).
	Distinct int
	// LR is the step's learning rate.
	LR float64
}

// check reports a batch the step cannot run.
func (l *LiT) check(train *DeviceRows, caps *DeviceCaptions, bt LiTBatch) error {
	B, U := l.o.Batch, len(bt.Caps)
	switch {
	case len(bt.Rows) != B:
		return fmt.Errorf("cuda: LiT step: %d image rows for a batch of %d", len(bt.Rows), B)
	case U < 1 || U > B:
		return fmt.Errorf("cuda: LiT step: %d captions for a batch of %d", U, B)
	case bt.RowCap == nil && U != B:
		return fmt.Errorf("cuda: LiT step: %d captions without a row map for a batch of %d", U, B)
	case bt.RowCap != nil && len(bt.RowCap) != B:
		return fmt.Errorf("cuda: LiT step: row map of %d for a batch of %d", len(bt.RowCap), B)
	case bt.T < 1 || bt.T > l.m.Context || bt.T > caps.T:
		return fmt.Errorf("cuda: LiT step: %d tokens outside 1..the context %d and the caption table's %d", bt.T, l.m.Context, caps.T)
	case train.D != l.m.ImageDim:
		return fmt.Errorf("cuda: LiT step: training rows of width %d, the model takes %d", train.D, l.m.ImageDim)
	}
	for _, r := range bt.Rows {
		if r < 0 || int(r) >= train.N {
			return fmt.Errorf("cuda: LiT step: image row %d outside the %d resident rows", r, train.N)
		}
	}
	for _, c := range bt.Caps {
		if c < 0 || int(c) >= caps.K {
			return fmt.Errorf("cuda: LiT step: caption %d outside the table's %d", c, caps.K)
		}
		if n := caps.lens[c]; n > bt.T {
			return fmt.Errorf("cuda: LiT step: caption %d has %d tokens, the step runs %d", c, n, bt.T)
		}
	}
	for _, u := range bt.RowCap {
		if u < 0 || int(u) >= U {
			return fmt.Errorf("cuda: LiT step: row maps to caption %d of %d", u, U)
		}
	}
	return nil
}

// Launch queues one training step on bt (forward, loss, backward, AdamW)
// and returns without waiting for the GPU; Wait returns its statistics.
// The host may prepare the next batch meanwhile. A step whose shape has
// not been reserved grows the arena first (an error naming the size when
// the GPU's memory does not have it); nothing of the step is queued then,
// and the weights stay those of the last step.
func (l *LiT) Launch(train *DeviceRows, caps *DeviceCaptions, bt LiTBatch) (err error) {
	defer Recover(&err)
	defer guard("LiT step")
	if l.pending {
		return fmt.Errorf("cuda: LiT step launched before the previous one was waited for")
	}
	if err := l.check(train, caps, bt); err != nil {
		return err
	}
	U, T := len(bt.Caps), bt.T
	if !l.fits(U, T) {
		if err := l.reserve(max(U, l.arenaU), max(T, l.arenaT)); err != nil {
			return err
		}
	}
	t := l.step + 1
	hyper := [3]float32{float32(bt.LR),
		float32(1 - math.Pow(l.o.Beta1, float64(t))), float32(1 - math.Pow(l.o.Beta2, float64(t)))}
	l.dirty = true
	l.io.put(l.b, l.o.Batch, bt.Rows, bt.Caps, bt.RowCap, hyper)
	key := litGraphKey{U: U, T: T, rowcap: bt.RowCap != nil, train: train.buf.Ptr, caps: caps.ids.Ptr}
	if l.o.Graphs {
		if err := l.replay(key, train, caps); err != nil {
			return err
		}
	} else {
		l.record(key, train, caps)
	}
	dv := l.b.dv
	must(dv.CopyToHostAsync(l.io.stats[:16], l.loss.stats, dv.Stream))
	must(dv.CopyToHostAsync(l.io.stats[16:20], l.master.Ptr+uintptr(4*l.p.logit.off), dv.Stream))
	must(dv.Record(l.io.done, dv.Stream))
	l.step++
	l.pending = true
	return nil
}

// Wait waits for the launched step and returns its statistics.
func (l *LiT) Wait() (s LiTStats, err error) {
	defer Recover(&err)
	if !l.pending {
		return s, fmt.Errorf("cuda: LiT: no step launched")
	}
	l.pending = false
	if err := l.b.dv.EventSync(l.io.done); err != nil {
		return s, &OpError{Op: fmt.Sprintf("LiT step %d", l.step), Err: err}
	}
	l.dirty = false
	st := l.io.stats
	s.Loss = float64(math.Float32frombits(binary.LittleEndian.Uint32(st[0:])))
	s.GradNorm = math.Sqrt(math.Float64frombits(binary.LittleEndian.Uint64(st[8:])))
	s.LogitScale = float64(math.Float32frombits(binary.LittleEndian.Uint32(st[16:])))
	return s, nil
}

// Step is Launch then Wait.
func (l *LiT) Step(train *DeviceRows, caps *DeviceCaptions, bt LiTBatch) (LiTStats, error) {
	if err := l.Launch(train, caps, bt); err != nil {
		return LiTStats{}, err
	}
	return l.Wait()
}

// record queues the step's device work for shape key; nothing in it waits
// for the host, allocates or reads host memory (a graph capture records it
// as it is).
func (l *LiT) record(key litGraphKey, train *DeviceRows, caps *DeviceCaptions) {
	b, m, s := l.b, l.m, &l.loss
	B, E := l.o.Batch, m.Embed
	a, _ := l.layoutActs(l.arena.Ptr, key.U, key.T)
	rowcap := uintptr(0)
	if key.rowcap {
		rowcap = l.io.rowcap
	}
	must(b.dv.Memset(l.grad.Ptr, l.grad.Bytes))
	must(b.dv.Memset(s.stats, 16))

	l.imageForward(train)
	l.textForward(&a, caps, l.io.caps)

	// ---- the loss: tn = normalize(emb[rowcap]); G = img·tnᵀ; InfoNCE on s·G ----
	must(b.k.launchLitTextNorm(l.rowsLaunch(B, E), s.tn, a.emb, rowcap, int32(E)))
	b.gemm(gemmCall{transB: true, M: B, N: B, K: E, alpha: 1, a: s.imgN, lda: E, b: s.tn, ldb: E, c: s.gram, ldc: B, outF32: true})
	ls := l.master.Ptr + uintptr(4*l.p.logit.off)
	l.nceStats(ls)
	must(b.k.launchLitNceGrad(l.rowsLaunch(B, B), s.dG, s.rowPart, s.gram, s.rowLse, s.colLse, ls, int32(B)))
	must(b.k.launchLitNceFinish(l.oneBlock(), s.stats, l.g(l.p.logit), s.rowLse, s.colLse, s.gram, s.rowPart, ls, int32(B)))
	// d tn (B,E) = dGᵀ·img
	b.gemm(gemmCall{transA: true, M: B, N: E, K: B, alpha: 1, a: s.dG, lda: B, b: s.imgN, ldb: E, c: s.dtn, ldc: E, outF32: true})
	if m.Head {
		l.imageBackward(&a)
	}
	// rows sharing a caption add their gradients onto it, then emb's gradient
	dtnU := s.dtn
	if key.rowcap {
		dtnU = a.dtnU
		must(b.dv.Memset(dtnU, uint64(4*key.U*E)))
		must(b.k.launchLitScatterRows(b.gridN(B*E), dtnU, s.dtn, rowcap, int32(E), int64(B*E)))
	}
	must(b.dv.Memset(a.demb, uint64(4*key.U*E)))
	must(b.k.launchLitL2normBwdF32(l.rowsLaunch(key.U, E), a.demb, dtnU, a.emb, int32(E)))
	if a.demb16 != a.demb {
		must(b.k.launchF32ToBF16(b.gridN(key.U*E), a.demb16, a.demb, int64(key.U*E)))
	}
	l.textBackward(&a, caps, l.io.caps)

	// ---- AdamW over the flat buffer ----
	sumsq := s.stats + 8
	must(b.k.launchSumSquares(b.gridN(int(l.p.n)), sumsq, l.grad.Ptr, l.p.n))
	o := l.o
	must(b.k.launchLitAdamw(b.gridN(int(l.p.n)), l.master.Ptr, l.copy16.Ptr, l.grad.Ptr, l.mom1.Ptr, l.mom2.Ptr,
		l.p.n, l.p.ndecay, l.io.hyper, sumsq, float32(o.Beta1), float32(o.Beta2), float32(o.Eps), float32(o.WeightDecay),
		float32(o.ClipNorm), l.p.logit.off, maxLogitScale))
}

// rowsLaunch is one block per row of C columns (lit.cu's row kernels).
func (l *LiT) rowsLaunch(rows, cols int) launchConfig { return l.b.gridRows(rows, cols) }

// oneBlock is a single block of 1024 threads.
func (l *LiT) oneBlock() launchConfig {
	return launchConfig{grid: Dim3{X: 1}, block: Dim3{X: 1024}, stream: l.b.dv.Stream}
}

// nceStats fills rowLse and colLse from the B×B Gram matrix and ls.
func (l *LiT) nceStats(ls uintptr) { l.nceStatsB(ls, l.loss.B) }

// nceStatsB is nceStats for a Gram matrix of B ≤ the batch rows (val batches).
func (l *LiT) nceStatsB(ls uintptr, B int) {
	b, s := l.b, &l.loss
	chunks := (B + s.rowsPerChunk - 1) / s.rowsPerChunk
	st := launchConfig{grid: Dim3{X: uint32(chunks)}, block: Dim3{X: 256}, stream: b.dv.Stream}
	must(b.k.launchLitNceStats(st, s.rowLse, s.colM, s.colS, s.gram, ls, int32(B), int32(s.rowsPerChunk)))
	must(b.k.launchLitNceColmerge(b.gridN(B), s.colLse, s.colM, s.colS, int32(B), int32(chunks)))
}

// imageForward gathers the batch's rows from the resident table into imgN
// (B,E), normalised; with the head, through it.
func (l *LiT) imageForward(train *DeviceRows) {
	b, m, s := l.b, l.m, &l.loss
	B, E, D := l.o.Batch, m.Embed, m.ImageDim
	if !m.Head {
		must(b.k.launchLitRowsNorm(l.rowsLaunch(B, E), s.imgN, train.buf.Ptr, train.flag(), l.io.rows, int32(E)))
		return
	}
	must(b.k.launchLitRowsGather(b.gridN(B*D), s.imgRaw, train.buf.Ptr, train.flag(), l.io.rows, int32(D), int64(B*D)))
	l.lin(s.imgH, s.imgRaw, l.w(l.p.headW), l.w(l.p.headB), 0, B, E, D, false)
	must(b.k.launchL2normalize(l.rowsLaunch(B, E), s.imgN, s.imgH, int32(E)))
}

// imageBackward accumulates the head's gradients from dG: d img = dG·tn,
// through the normalisation, then the Linear.
func (l *LiT) imageBackward(a *litActs) {
	b, m, s := l.b, l.m, &l.loss
	B, E, D := l.o.Batch, m.Embed, m.ImageDim
	b.gemm(gemmCall{M: B, N: E, K: B, alpha: 1, a: s.dG, lda: B, b: s.tn, ldb: E, c: s.dimg, ldc: E, outF32: true})
	must(b.dv.Memset(s.dimgH, uint64(4*B*E)))
	must(b.k.launchLitL2normBwd(l.rowsLaunch(B, E), s.dimgH, s.dimg, s.imgH, int32(E)))
	dh := s.dimgH
	if l.act != 4 {
		must(b.k.launchF32ToBF16(b.gridN(B*E), s.dimgH16, s.dimgH, int64(B*E)))
		dh = s.dimgH16
	}
	l.linDW(l.g(l.p.headW), dh, s.imgRaw, B, E, D)
	must(b.colsum(l.g(l.p.headB), s.dimgH, B, E, b.colsumBlocks(B, E), a.part, false))
}
