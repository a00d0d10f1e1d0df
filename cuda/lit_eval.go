package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// The per-epoch evaluation of a LiT run on the device: captions encoded by
// the trained tower, the val images' features (through the head when there
// is one), zero-shot top-k and the val InfoNCE loss, with only indices,
// predictions and one loss per batch crossing to the host.

// DeviceEmbeddings are L2-normalised rows (N,E) on the GPU, of the
// trainer's activation type.
type DeviceEmbeddings struct {
	b    *Backend
	buf  Buffer
	N, E int
}

// Free releases the rows.
func (e *DeviceEmbeddings) Free() {
	if e != nil && e.buf.Ptr != 0 {
		_ = e.b.dv.Free(e.buf)
		e.buf = Buffer{}
	}
}

func (l *LiT) newEmbeddings(n int, what string) *DeviceEmbeddings {
	buf, err := l.b.dv.Alloc(uint64(n*l.m.Embed) * l.act)
	if err != nil {
		panic(&OpError{Op: fmt.Sprintf("%s (%d rows of %d)", what, n, l.m.Embed), Err: err})
	}
	return &DeviceEmbeddings{b: l.b, buf: buf, N: n, E: l.m.Embed}
}

// UploadEmbeddings copies host rows (n,E), normalised by the caller (a
// classifier built from prompt templates), to the device.
func (l *LiT) UploadEmbeddings(rows []float32, n int) (e *DeviceEmbeddings, err error) {
	defer Recover(&err)
	defer guard("class embeddings upload")
	if len(rows) != n*l.m.Embed || n < 1 {
		return nil, fmt.Errorf("cuda: %d values for %d embeddings of %d", len(rows), n, l.m.Embed)
	}
	e = l.newEmbeddings(n, "class embeddings")
	l.b.upload(e.buf, rows)
	return e, nil
}

// putIndices uploads index lists into the step inputs' rows and caps
// (either may be nil) through a staging slot.
func (l *LiT) putIndices(rows, caps []int32) {
	l.io.put(l.b, l.o.Batch, rows, caps, nil, [3]float32{})
}

// EncodeCaptions runs the tower on the captions rows of caps (no gradient)
// and returns their embeddings, normalised. Chunks of captions share a
// context (their longest, bucketed) and are as many as the arena holds.
func (l *LiT) EncodeCaptions(caps *DeviceCaptions, rows []int32) (out *DeviceEmbeddings, err error) {
	defer Recover(&err)
	defer guard("LiT caption encoding")
	if err := l.settle(); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("cuda: no captions to encode")
	}
	E := l.m.Embed
	out = l.newEmbeddings(len(rows), "caption embeddings")
	defer func() {
		if err != nil {
			out.Free()
		}
	}()
	for lo := 0; lo < len(rows); {
		n, T := l.encodeChunk(caps, rows[lo:])
		if n == 0 {
			return nil, fmt.Errorf("cuda: caption %d (%d tokens) does not fit the trainer's activation memory", rows[lo], caps.lens[rows[lo]])
		}
		l.putIndices(nil, rows[lo:lo+n])
		a, _ := l.layoutActs(l.arena.Ptr, n, T)
		l.textForward(&a, caps, l.io.caps)
		dst := out.buf.Ptr + uintptr(uint64(lo*E)*l.act)
		must(l.b.k.launchLitTextNorm(l.rowsLaunch(n, E), dst, a.emb, 0, int32(E)))
		lo += n
	}
	return out, l.b.dv.Sync()
}

// encodeChunk picks how many of rows (from the first, at most B) go in the
// next forward and at what context: the most that fit the arena.
func (l *LiT) encodeChunk(caps *DeviceCaptions, rows []int32) (n, T int) {
	longest := 1
	for n < min(len(rows), l.o.Batch) {
		nl := max(longest, caps.lens[rows[n]])
		nT := min((nl+TokenBucket-1)/TokenBucket*TokenBucket, caps.T, l.m.Context)
		if !l.fits(n+1, nT) {
			break
		}
		longest, T = nl, nT
		n++
	}
	return n, T
}

// ImageEmbeddings returns the val table's rows as the loss sees them:
// through the image head when there is one, normalised.
func (l *LiT) ImageEmbeddings(val *DeviceRows) (out *DeviceEmbeddings, err error) {
	defer Recover(&err)
	defer guard("LiT val image embeddings")
	if err := l.settle(); err != nil {
		return nil, err
	}
	if val.D != l.m.ImageDim {
		return nil, fmt.Errorf("cuda: val rows of width %d, the model takes %d", val.D, l.m.ImageDim)
	}
	b, m, s := l.b, l.m, &l.loss
	B, E, D := l.o.Batch, m.Embed, m.ImageDim
	out = l.newEmbeddings(val.N, "val image embeddings")
	idx := make([]int32, B)
	for lo := 0; lo < val.N; lo += B {
		n := min(B, val.N-lo)
		for i := range idx[:n] {
			idx[i] = int32(lo + i)
		}
		l.putIndices(idx[:n], nil)
		dst := out.buf.Ptr + uintptr(uint64(lo*E)*l.act)
		if !m.Head {
			must(b.k.launchLitRowsNorm(l.rowsLaunch(n, E), dst, val.buf.Ptr, val.flag(), l.io.rows, int32(E)))
			continue
		}
		must(b.k.launchLitRowsGather(b.gridN(n*D), s.imgRaw, val.buf.Ptr, val.flag(), l.io.rows, int32(D), int64(n*D)))
		l.lin(s.imgH, s.imgRaw, l.w(l.p.headW), l.w(l.p.headB), 0, n, E, D, false)
		must(b.k.launchL2normalize(l.rowsLaunch(n, E), dst, s.imgH, int32(E)))
	}
	return out, b.dv.Sync()
}

// scoreBytes bounds the similarity rows held at once: rows × K float32 up
// to 256 MiB.
const scoreBytes = 256 << 20

// ZeroShot returns, for each row of img, the P best rows of cls by cosine
// similarity (both normalised), best first, ties to the lower index
// (evaluate.Score's rule): pred (N,P) and their similarities.
func (l *LiT) ZeroShot(img, cls *DeviceEmbeddings, P int) (pred []int32, sims []float32, err error) {
	defer Recover(&err)
	defer guard("zero-shot scoring")
	if P < 1 || P > 8 || P > cls.N {
		return nil, nil, fmt.Errorf("cuda: top-%d of %d classes (1..8)", P, cls.N)
	}
	b := l.b
	N, K, E := img.N, cls.N, l.m.Embed
	chunk := max(1, min(N, scoreBytes/(4*K)))
	sim := b.scratchF32(chunk, K)
	defer b.free(sim)
	pd, vd := b.newTensor(4, []int{chunk, P}), b.scratchF32(chunk, P)
	defer b.free(pd, vd)
	pred, sims = make([]int32, N*P), make([]float32, N*P)
	for lo := 0; lo < N; lo += chunk {
		n := min(chunk, N-lo)
		a := img.buf.Ptr + uintptr(uint64(lo*E)*l.act)
		b.gemm(gemmCall{transB: true, M: n, N: K, K: E, alpha: 1, a: a, lda: E, b: cls.buf.Ptr, ldb: E, c: sim.buf.Ptr, ldc: K, outF32: true})
		lc := launchConfig{grid: Dim3{X: uint32((n + 3) / 4)}, block: Dim3{X: 128}, stream: b.dv.Stream}
		must(b.k.launchLitTopk(lc, pd.buf.Ptr, vd.buf.Ptr, sim.buf.Ptr, int32(n), int32(K), int32(P)))
		must(b.dv.CopyToHost(unsafe.Slice((*byte)(unsafe.Pointer(&pred[lo*P])), 4*n*P), pd.buf))
		must(b.dv.CopyToHost(unsafe.Slice((*byte)(unsafe.Pointer(&sims[lo*P])), 4*n*P), vd.buf))
	}
	return pred, sims, nil
}

// ValLoss is the mean symmetric InfoNCE loss (the current logit scale, no
// gradient) over batches of Bv ≤ B rows of order: image order[i]'s row of
// img against its caption's row txtOf[order[i]] of txt. The last partial
// batch is dropped; NaN when there is no whole batch.
func (l *LiT) ValLoss(img, txt *DeviceEmbeddings, txtOf []int32, order []int, Bv int) (loss float64, err error) {
	defer Recover(&err)
	defer guard("val loss")
	if Bv < 2 || Bv > l.o.Batch {
		return 0, fmt.Errorf("cuda: val batches of %d (2..%d)", Bv, l.o.Batch)
	}
	if err := l.settle(); err != nil {
		return 0, err
	}
	b, s := l.b, &l.loss
	E := l.m.Embed
	nb := len(order) / Bv
	if nb == 0 {
		return math.NaN(), nil
	}
	ri, ti := make([]int32, Bv), make([]int32, Bv)
	ls := l.master.Ptr + uintptr(4*l.p.logit.off)
	var sum float64
	var st [4]byte
	for k := 0; k < nb; k++ {
		for j, i := range order[k*Bv : (k+1)*Bv] {
			ri[j], ti[j] = int32(i), txtOf[i]
		}
		l.putIndices(ri, ti)
		must(b.k.launchGatherRows(b.gridN(Bv*E), s.imgN, img.buf.Ptr, l.io.rows, int64(Bv), int32(E)))
		must(b.k.launchGatherRows(b.gridN(Bv*E), s.tn, txt.buf.Ptr, l.io.caps, int64(Bv), int32(E)))
		b.gemm(gemmCall{transB: true, M: Bv, N: Bv, K: E, alpha: 1, a: s.imgN, lda: E, b: s.tn, ldb: E, c: s.gram, ldc: Bv, outF32: true})
		l.nceStatsB(ls, Bv)
		must(b.k.launchLitNceFinish(l.oneBlock(), s.stats, 0, s.rowLse, s.colLse, s.gram, 0, ls, int32(Bv)))
		must(b.dv.CopyToHost(st[:], Buffer{Ptr: s.stats, Bytes: 4}))
		sum += float64(math.Float32frombits(binary.LittleEndian.Uint32(st[:])))
	}
	return sum / float64(nb), nil
}

// Download copies the rows to the host as float32.
func (e *DeviceEmbeddings) Download() (out []float32, err error) {
	defer Recover(&err)
	defer guard("embeddings download")
	t := &Tensor{buf: e.buf, shape: []int{e.N, e.E}, n: e.N * e.E}
	return e.b.ToFloat32(t, nil), nil
}

// Encode runs the tower on token rows ids (B,T) pooled at pool (B) and
// returns their embeddings (B,E), normalised (the host side of a zero-shot
// classifier built from templates).
func (l *LiT) Encode(ids []int32, B, T int, pool []int) ([]float32, error) {
	caps, err := l.b.NewDeviceCaptions(ids, B, T, pool)
	if err != nil {
		return nil, err
	}
	defer caps.Free()
	rows := make([]int32, B)
	for i := range rows {
		rows[i] = int32(i)
	}
	e, err := l.EncodeCaptions(caps, rows)
	if err != nil {
		return nil, err
	}
	defer e.Free()
	return e.Download()
}
