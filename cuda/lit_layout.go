package cuda

import (
	"fmt"
	"unsafe"
)

// The trainer's memory: the activation arena (laid out for each step's
// shape inside one allocation sized for the largest), the loss's buffers
// (fixed by the batch) and the per-step inputs.

// bump lays out buffers from base, each 256-byte aligned.
type bump struct {
	base, off uintptr
}

func (p *bump) take(bytes uint64) uintptr {
	at := p.base + p.off
	p.off += uintptr((bytes + 255) / 256 * 256)
	return at
}

// litActs are the activations and scratch of one step shape (U captions of
// T tokens) in the arena. Per layer the backward keeps what it cannot
// recompute cheaply; the LayerNorm outputs and the post-activation MLP
// values are recomputed from the saved statistics and pre-activations.
type litActs struct {
	U, T, N                  int
	res                      []uintptr // L+1 residual streams (N,W)
	mean1, rstd1             []uintptr // (N) float32
	mean2, rstd2             []uintptr
	qkv, probs, att, x1, fc  []uintptr // (N,3W) (U·H,T,Tp) (N,W) (N,W) (N,F)
	ln, fca, dfca            uintptr   // (N,W) (N,F) (N,F)
	dres, dln, datt, dqkv    uintptr   // (N,W) ×3, (N,3W)
	q, k, v, heads           uintptr   // (U·H,Tp,D) each; heads is dO in the backward
	dq, dk, dv               uintptr
	scores                   uintptr // (U·H,T,Tp) float32; dp in the backward
	ds                       uintptr // (U·H,T,Tp); scores itself in float32
	part                     uintptr // float32 partials of the reductions
	pooled, lnf, dlnf, dpool uintptr // (U,W)
	meanF, rstdF             uintptr // (U) float32
	emb, demb, dtnU          uintptr // (U,E) float32
	demb16                   uintptr // (U,E); demb itself in float32
}

// partFloats is the most partial sums one reduction of the step writes.
func (l *LiT) partFloats(U, T int) int {
	b, m := l.b, l.m
	N, W, F := U*T, m.Width, m.Hidden
	n := 0
	for _, rc := range [][2]int{{N, 3 * W}, {N, W}, {N, F}, {U, T * W}, {l.o.Batch, m.Embed}} {
		n = max(n, b.colsumBlocks(rc[0], rc[1])*rc[1])
	}
	for _, rows := range []int{N, U} {
		G, _ := b.lnBackwardBlocks(rows, W)
		n = max(n, G*2*W)
	}
	return n
}

// layoutActs places a step shape's activations from base; with base 0 the
// returned size is the arena it needs.
func (l *LiT) layoutActs(base uintptr, U, T int) (litActs, uint64) {
	m, e := l.m, uint64(l.act)
	L, W, F, E, H := m.Layers, m.Width, m.Hidden, m.Embed, m.Heads
	N, Tp := U*T, padTokens(T)
	nw, nf := uint64(N*W), uint64(N*F)
	nh, nhead := uint64(U*H*T*Tp), uint64(U*Tp*W) // (U·H,T,Tp) scores, (U·H,Tp,D) heads
	p := bump{base: base}
	a := litActs{U: U, T: T, N: N}
	for i := 0; i <= L; i++ {
		a.res = append(a.res, p.take(nw*e))
	}
	for i := 0; i < L; i++ {
		a.mean1 = append(a.mean1, p.take(4*uint64(N)))
		a.rstd1 = append(a.rstd1, p.take(4*uint64(N)))
		a.mean2 = append(a.mean2, p.take(4*uint64(N)))
		a.rstd2 = append(a.rstd2, p.take(4*uint64(N)))
		a.qkv = append(a.qkv, p.take(3*nw*e))
		a.probs = append(a.probs, p.take(nh*e))
		a.att = append(a.att, p.take(nw*e))
		a.x1 = append(a.x1, p.take(nw*e))
		a.fc = append(a.fc, p.take(nf*e))
	}
	a.ln, a.fca, a.dfca = p.take(nw*e), p.take(nf*e), p.take(nf*e)
	a.dres, a.dln, a.datt, a.dqkv = p.take(nw*e), p.take(nw*e), p.take(nw*e), p.take(3*nw*e)
	a.q, a.k, a.v, a.heads = p.take(nhead*e), p.take(nhead*e), p.take(nhead*e), p.take(nhead*e)
	a.dq, a.dk, a.dv = p.take(nhead*e), p.take(nhead*e), p.take(nhead*e)
	a.scores = p.take(4 * nh)
	a.ds = a.scores
	if e != 4 {
		a.ds = p.take(nh * e)
	}
	a.part = p.take(4 * uint64(l.partFloats(U, T)))
	uw, ue := uint64(U*W), uint64(U*E)
	a.pooled, a.lnf, a.dlnf, a.dpool = p.take(uw*e), p.take(uw*e), p.take(uw*e), p.take(uw*e)
	a.meanF, a.rstdF = p.take(4*uint64(U)), p.take(4*uint64(U))
	a.emb, a.demb, a.dtnU = p.take(4*ue), p.take(4*ue), p.take(4*ue)
	a.demb16 = a.demb
	if e != 4 {
		a.demb16 = p.take(ue * e)
	}
	return a, uint64(p.off)
}

// ArenaBytes is the activation memory a step of U captions of T tokens
// needs (the arena is sized for the largest step).
func (l *LiT) ArenaBytes(U, T int) uint64 {
	_, n := l.layoutActs(0, U, T)
	return n
}

// reserve sizes the arena for U captions of T tokens (growing only):
// every smaller shape is laid out inside it.
func (l *LiT) reserve(U, T int) error {
	need := l.ArenaBytes(U, T)
	if l.arena.Ptr != 0 && need <= l.arena.Bytes {
		return nil
	}
	l.dropGraphs() // they hold the old arena's addresses
	old := l.arena.Bytes
	if l.arena.Ptr != 0 {
		// freed first: the old and the new arena need not fit side by side
		if err := l.b.dv.Free(l.arena); err != nil {
			return &OpError{Op: "LiT activations", Err: err}
		}
		l.arena = Buffer{}
	}
	buf, err := l.b.dv.Alloc(need)
	if err != nil {
		if old > 0 { // keep the trainer usable for the shapes it had room for
			l.arena, _ = l.b.dv.Alloc(old)
		}
		return &OpError{Op: fmt.Sprintf("LiT activations for %d captions × %d tokens", U, T), Err: err}
	}
	l.arena, l.arenaU, l.arenaT = buf, U, T
	return nil
}

// fits reports whether a step of U captions of T tokens fits the arena.
func (l *LiT) fits(U, T int) bool { return l.arena.Ptr != 0 && l.ArenaBytes(U, T) <= l.arena.Bytes }

// litLoss holds the B-level tensors of the loss and the image side.
type litLoss struct {
	buf                     Buffer
	B, chunks, rowsPerChunk int
	imgN, tn                uintptr // (B,E)
	gram                    uintptr // (B,B) float32: img·tnᵀ
	dG                      uintptr // (B,B)
	colM, colS              uintptr // (chunks,B) float32
	rowLse, colLse, rowPart uintptr // (B) float32
	dtn                     uintptr // (B,E) float32
	imgRaw, imgH            uintptr // (B,D), (B,E): the image head's input and output
	dimg, dimgH             uintptr // (B,E) float32
	dimgH16                 uintptr // (B,E)
	stats                   uintptr // {loss float32, pad, Σ g² float64}
}

// nceRows is how many rows of the B×B logits one block of lit_nce_stats takes.
const nceRows = 8

func newLitLoss(l *LiT, alloc func(string, uint64) Buffer) litLoss {
	B, E, D, e := l.o.Batch, l.m.Embed, l.m.ImageDim, uint64(l.act)
	s := litLoss{B: B, rowsPerChunk: nceRows, chunks: (B + nceRows - 1) / nceRows}
	lay := func(p *bump) {
		be, bb := uint64(B*E), uint64(B*B)
		s.imgN, s.tn = p.take(be*e), p.take(be*e)
		s.gram, s.dG = p.take(4*bb), p.take(bb*e)
		s.colM, s.colS = p.take(4*uint64(s.chunks*B)), p.take(4*uint64(s.chunks*B))
		s.rowLse, s.colLse, s.rowPart = p.take(4*uint64(B)), p.take(4*uint64(B)), p.take(4*uint64(B))
		s.dtn = p.take(4 * be)
		if l.m.Head {
			s.imgRaw, s.imgH = p.take(uint64(B*D)*e), p.take(be*e)
			s.dimg, s.dimgH, s.dimgH16 = p.take(4*be), p.take(4*be), p.take(be*e)
		}
		s.stats = p.take(16)
	}
	var size bump
	lay(&size)
	s.buf = alloc(fmt.Sprintf("loss buffers for a batch of %d", B), uint64(size.off))
	lay(&bump{base: s.buf.Ptr})
	return s
}

func (s *litLoss) free(b *Backend) {
	_ = b.dv.Free(s.buf)
	s.buf = Buffer{}
}

// litIO is what the host sends each step and reads back: on the device the
// batch's image rows (B), the captions to encode (≤ B), each row's caption
// (B) and {lr, 1−β1^t, 1−β2^t}; two page-locked staging slots (a step's
// inputs are written while the previous step runs) and the statistics the
// step copies back.
type litIO struct {
	dev      Buffer
	rows     uintptr // (B) int32
	caps     uintptr // (B) int32
	rowcap   uintptr // (B) int32
	hyper    uintptr // 4 float32
	slots    [2][]byte
	slotDone [2]Event // the upload from the slot has run
	slot     int
	stats    []byte // page-locked: loss float32, pad, Σ g² float64, logit scale float32
	done     Event  // the step's statistics are in stats
}

func (io *litIO) slotBytes(B int) int { return 3*4*B + 16 }

func newLitIO(b *Backend, B int, alloc func(string, uint64) Buffer) litIO {
	var io litIO
	n := io.slotBytes(B)
	io.dev = alloc("step inputs", uint64(n))
	io.rows, io.caps, io.rowcap = io.dev.Ptr, io.dev.Ptr+uintptr(4*B), io.dev.Ptr+uintptr(8*B)
	io.hyper = io.dev.Ptr + uintptr(12*B)
	for i := range io.slots {
		s, err := b.dv.AllocHost(n)
		if err != nil {
			panic(&OpError{Op: "LiT step input staging", Err: err})
		}
		io.slots[i] = s
		if io.slotDone[i], err = b.dv.NewEvent(); err != nil {
			panic(&OpError{Op: "LiT events", Err: err})
		}
		must(b.dv.Record(io.slotDone[i], b.dv.Stream))
	}
	var err error
	if io.stats, err = b.dv.AllocHost(32); err != nil {
		panic(&OpError{Op: "LiT statistics staging", Err: err})
	}
	if io.done, err = b.dv.NewEvent(); err != nil {
		panic(&OpError{Op: "LiT events", Err: err})
	}
	return io
}

// put writes a step's inputs into the next staging slot and queues their
// upload; the slot's previous upload has run by then (its event).
func (io *litIO) put(b *Backend, B int, rows, caps, rowcap []int32, hyper [3]float32) {
	s := io.slot
	io.slot ^= 1
	must(b.dv.EventSync(io.slotDone[s]))
	buf := io.slots[s]
	i32 := unsafe.Slice((*int32)(unsafe.Pointer(&buf[0])), 3*B)
	copy(i32[:B], rows)
	copy(i32[B:2*B], caps)
	if rowcap != nil {
		copy(i32[2*B:3*B], rowcap)
	}
	f := unsafe.Slice((*float32)(unsafe.Pointer(&buf[12*B])), 4)
	copy(f, hyper[:])
	must(b.dv.CopyToDeviceAsync(io.dev, buf, b.dv.Stream))
	must(b.dv.Record(io.slotDone[s], b.dv.Stream))
}

func (io *litIO) free(b *Backend) {
	for i := range io.slots {
		if io.slots[i] != nil {
			_ = b.dv.FreeHost(io.slots[i])
			_ = b.dv.DestroyEvent(io.slotDone[i])
		}
		io.slots[i] = nil
	}
	if io.stats != nil {
		_ = b.dv.FreeHost(io.stats)
		_ = b.dv.DestroyEvent(io.done)
		io.stats = nil
	}
	_ = b.dv.Free(io.dev)
	io.dev = Buffer{}
}
