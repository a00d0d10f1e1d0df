package cuda

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/litcache/litcache/internal/backend"

	"github.com/litcache/litcache/internal/half"
)

// Precision is the storage type of a Backend's tensors.
type Precision uint8

const (
	// BF16 stores activations and weights in bfloat16 and accumulates in
	// float32 (GEMMs, norms, softmax): the inference path of the image tower.
	// The backward ops and AdamW need F32.
	BF16 Precision = iota
	// F32 stores everything in float32: the exact training path and the
	// reference mode of the parity tests.
	F32
)

func (p Precision) String() string {
	if p == F32 {
		return "float32"
	}
	return "bf16"
}

// Options select the device and precision of a Backend.
type Options struct {
	Device    int // ordinal among the visible GPUs
	Precision Precision
}

// Backend implements backend.Backend on one GPU. Ops are queued on the
// device's stream; ToFloat32, CrossEntropy and SumSquares wait for it. A CUDA
// failure inside an op panics with the *Error naming the call (the interface
// has no error returns); stages recover it into an error (see Recover).
// Memory comes from a pool keyed by size, so a steady loop over batches of
// one shape allocates nothing after its first batch.
type Backend struct {
	dv   *Device
	lt   *CublasLt
	nv   *NVRTC
	prec Precision

	mods    []*Module
	mu      sync.Mutex
	fns     map[string]*Function
	pool    map[uint64][]Buffer
	elem    uint64 // bytes per element
	suffix  string // kernel name suffix: "_f32" or "_bf16"
	maxGrid uint32
}

var _ backend.Backend = (*Backend)(nil)

// Tensor is device memory with a shape. Views from Reshape share the memory
// and do not own it.
type Tensor struct {
	buf   Buffer
	shape []int
	n     int
	owner bool
}

// Shape is the tensor's dimensions.
func (t *Tensor) Shape() []int { return t.shape }

// Len is the number of elements.
func (t *Tensor) Len() int { return t.n }

// Ptr is the device address.
func (t *Tensor) Ptr() uintptr { return t.buf.Ptr }

// NewBackend opens the GPU, loads cuBLASLt and NVRTC, and compiles (or reads
// from the cubin cache) the embedded kernels for the GPU's architecture.
func NewBackend(opt Options) (*Backend, error) {
	dv, err := Open(opt.Device)
	if err != nil {
		return nil, err
	}
	nv, err := LoadNVRTC()
	if err != nil {
		return nil, err
	}
	lt, err := NewCublasLt(dv)
	if err != nil {
		return nil, err
	}
	b := &Backend{dv: dv, lt: lt, nv: nv, prec: opt.Precision, fns: map[string]*Function{}, pool: map[uint64][]Buffer{},
		maxGrid: uint32(max(dv.SMs, 1) * 32)}
	b.elem, b.suffix = 2, "_bf16"
	if opt.Precision == F32 {
		b.elem, b.suffix = 4, "_f32"
	}
	srcs, err := KernelSources()
	if err != nil {
		return nil, err
	}
	for _, s := range srcs {
		cubin, err := nv.CompileCached(s.Name, s.Src, dv.Arch())
		if err != nil {
			return nil, err
		}
		m, err := dv.LoadModule(cubin)
		if err != nil {
			return nil, fmt.Errorf("cuda: loading kernels %s: %w", s.Name, err)
		}
		for _, name := range KernelNames(s.Src) {
			f, err := m.Function(name)
			if err != nil {
				return nil, err
			}
			b.fns[name] = f
		}
		b.mods = append(b.mods, m)
	}
	return b, nil
}

// Device is the GPU the backend runs on.
func (b *Backend) Device() *Device { return b.dv }

// Name identifies the backend, e.g. "cuda/bf16 (NVIDIA H100 80GB HBM3, sm_90)".
func (b *Backend) Name() string {
	return fmt.Sprintf("cuda/%s (%s, %s)", b.prec, b.dv.Name, b.dv.Arch())
}

// Sync waits for every queued op.
func (b *Backend) Sync() error { return b.dv.Sync() }

// Recover turns a panic raised by a failing op into an error; use as
// `defer cuda.Recover(&err)` around code that drives the backend.
func Recover(err *error) {
	if r := recover(); r != nil {
		if e, ok := r.(error); ok {
			*err = e
			return
		}
		panic(r)
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func tt(t backend.Tensor) *Tensor {
	if t == nil {
		return nil
	}
	c, ok := t.(*Tensor)
	if !ok {
		panic(fmt.Sprintf("cuda: tensor of type %T is not a CUDA tensor", t))
	}
	return c
}

func ptr(t backend.Tensor) uintptr {
	if t == nil {
		return 0
	}
	return tt(t).buf.Ptr
}

func numel(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// alloc takes a buffer of bytes from the pool or the device.
func (b *Backend) alloc(bytes uint64) Buffer {
	b.mu.Lock()
	if l := b.pool[bytes]; len(l) > 0 {
		buf := l[len(l)-1]
		b.pool[bytes] = l[:len(l)-1]
		b.mu.Unlock()
		return buf
	}
	b.mu.Unlock()
	buf, err := b.dv.Alloc(bytes)
	if err != nil {
		// Out of memory: give the pool back to the device and try once more.
		b.Trim()
		buf, err = b.dv.Alloc(bytes)
	}
	must(err)
	return buf
}

func (b *Backend) release(buf Buffer) {
	b.mu.Lock()
	b.pool[buf.Bytes] = append(b.pool[buf.Bytes], buf)
	b.mu.Unlock()
}

// Trim frees every pooled buffer (after a change of batch shape, say).
func (b *Backend) Trim() {
	must(b.dv.Sync())
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, l := range b.pool {
		for _, buf := range l {
			_ = b.dv.Free(buf)
		}
		delete(b.pool, k)
	}
}

func (b *Backend) newTensor(elem uint64, shape []int) *Tensor {
	n := numel(shape)
	return &Tensor{buf: b.alloc(uint64(n) * elem), shape: append([]int(nil), shape...), n: n, owner: true}
}

// scratch allocates an uninitialised tensor of the backend's precision.
func (b *Backend) scratch(shape ...int) *Tensor { return b.newTensor(b.elem, shape) }

// scratchF32 allocates an uninitialised float32 tensor.
func (b *Backend) scratchF32(shape ...int) *Tensor { return b.newTensor(4, shape) }

// Zeros allocates a zero-filled tensor.
func (b *Backend) Zeros(shape ...int) backend.Tensor {
	t := b.scratch(shape...)
	must(b.dv.Memset(t.buf.Ptr, uint64(t.n)*b.elem))
	return t
}

// FromFloat32 copies data to a new tensor (converted to bf16 in BF16 precision).
func (b *Backend) FromFloat32(data []float32, shape ...int) backend.Tensor {
	if len(data) != numel(shape) {
		panic(fmt.Sprintf("cuda: FromFloat32: %d values for shape %v", len(data), shape))
	}
	t := b.scratch(shape...)
	b.upload(t.buf, data)
	return t
}

func (b *Backend) upload(dst Buffer, data []float32) {
	if len(data) == 0 {
		return
	}
	var raw []byte
	if b.prec == F32 {
		raw = unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 4*len(data))
	} else {
		h := make([]uint16, len(data))
		for i, v := range data {
			h[i] = half.F32ToBF16(v)
		}
		raw = unsafe.Slice((*byte)(unsafe.Pointer(&h[0])), 2*len(h))
	}
	// Async on the backend's stream keeps the copy ordered after queued work
	// that may still read dst's previous contents (pooled buffers).
	must(b.dv.CopyToDeviceAsync(dst, raw, b.dv.Stream))
	must(b.dv.Sync()) // raw is pageable Go memory: keep it alive until copied
}

func (b *Backend) uploadInt32(vals []int32) *Tensor {
	t := b.newTensor(4, []int{len(vals)})
	if len(vals) > 0 {
		must(b.dv.CopyToDeviceAsync(t.buf, unsafe.Slice((*byte)(unsafe.Pointer(&vals[0])), 4*len(vals)), b.dv.Stream))
		must(b.dv.Sync())
	}
	return t
}

// ToFloat32 waits for queued work and copies t to host memory.
func (b *Backend) ToFloat32(t backend.Tensor, dst []float32) []float32 {
	c := tt(t)
	if cap(dst) < c.n {
		dst = make([]float32, c.n)
	}
	dst = dst[:c.n]
	if c.n == 0 {
		return dst
	}
	if b.prec == F32 {
		must(b.dv.CopyToHost(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*c.n), c.buf))
		return dst
	}
	h := make([]uint16, c.n)
	must(b.dv.CopyToHost(unsafe.Slice((*byte)(unsafe.Pointer(&h[0])), 2*c.n), c.buf))
	for i, v := range h {
		dst[i] = half.BF16ToF32(v)
	}
	return dst
}

// Reshape returns a view of t with another shape of equal size.
func (b *Backend) Reshape(t backend.Tensor, shape ...int) backend.Tensor {
	c := tt(t)
	if numel(shape) != c.n {
		panic(fmt.Sprintf("cuda: Reshape %v to %v", c.shape, shape))
	}
	return &Tensor{buf: c.buf, shape: append([]int(nil), shape...), n: c.n}
}

// Free returns t's memory to the pool (views own nothing).
func (b *Backend) Free(t backend.Tensor) {
	if t == nil {
		return
	}
	c := tt(t)
	if c.owner && c.buf.Ptr != 0 {
		b.release(c.buf)
	}
	c.buf = Buffer{}
	c.owner = false
}

func (b *Backend) free(ts ...*Tensor) {
	for _, t := range ts {
		if t != nil {
			b.Free(t)
		}
	}
}

// Zero sets t to 0.
func (b *Backend) Zero(t backend.Tensor) {
	c := tt(t)
	must(b.dv.Memset(c.buf.Ptr, uint64(c.n)*b.elem))
}

// Copy copies src into dst.
func (b *Backend) Copy(dst, src backend.Tensor) {
	d, s := tt(dst), tt(src)
	if d.n != s.n {
		panic(fmt.Sprintf("cuda: Copy %v into %v", s.shape, d.shape))
	}
	must(b.dv.drv.check(b.dv.drv.cuMemcpyDtoDAsync(d.buf.Ptr, s.buf.Ptr, uint64(s.n)*b.elem, b.dv.Stream), "cuMemcpyDtoDAsync"))
}

// fn returns a kernel by its full name.
func (b *Backend) fn(name string) *Function {
	f, ok := b.fns[name]
	if !ok {
		panic(fmt.Sprintf("cuda: kernel %s is not in the embedded sources", name))
	}
	return f
}

// launchN runs a grid-stride kernel over n elements.
func (b *Backend) launchN(name string, n int, args ...any) {
	if n == 0 {
		return
	}
	grid := uint32(min(int64((n+255)/256), int64(b.maxGrid)))
	must(b.fn(name).Launch(Dim3{X: grid}, Dim3{X: 256}, 0, b.dv.Stream, args...))
}

// launchRows runs a one-block-per-row kernel over rows rows of width cols.
func (b *Backend) launchRows(name string, rows, cols int, args ...any) {
	if rows == 0 {
		return
	}
	block := uint32(min(max((cols+31)/32*32, 32), 1024))
	if block > 256 {
		block = 256
	}
	must(b.fn(name).Launch(Dim3{X: uint32(rows)}, Dim3{X: block}, 0, b.dv.Stream, args...))
}

func (b *Backend) needF32(op string) {
	if b.prec != F32 {
		panic(fmt.Sprintf("cuda: %s needs a backend of F32 precision (training keeps float32 gradients); this one is %s", op, b.prec))
	}
}

func rowsCols(t backend.Tensor) (int, int) {
	s := t.Shape()
	if len(s) == 0 {
		return 1, 1
	}
	c := s[len(s)-1]
	if c == 0 {
		return 0, 0
	}
	return t.Len() / c, c
}

// gemm computes row-major C (M,N) = alpha·op(A)·op(B) + beta·C as cuBLASLt's
// column-major Cᵀ = op(B)ᵀ·op(A)ᵀ. lda/ldb are the stored row lengths.
func (b *Backend) gemm(transA, transB bool, M, N, K int, alpha float32, a uintptr, lda int, bm uintptr, ldb int,
	beta float32, c uintptr, ldc int, bias uintptr, outF32 bool, batch int, strideA, strideB, strideC int64) {
	g := Gemm{
		TransA: transB, TransB: transA,
		M: N, N: M, K: K,
		LDA: ldb, LDB: lda, LDD: ldc,
		Batch: batch, StrideA: strideB, StrideB: strideA, StrideD: strideC,
		Bias: bias != 0, OutF32: outF32 || b.prec == F32, InF32: b.prec == F32,
	}
	if batch <= 1 {
		g.Batch, g.StrideA, g.StrideB, g.StrideD = 1, 0, 0, 0
	}
	must(b.lt.Run(g, alpha, bm, a, beta, c, bias, b.dv.Stream))
}

// ---- forward ----

// Linear: out (N,O) = act(x (N,I) · w (O,I)ᵀ + bias), bias fused into the GEMM
// epilogue; the activation is a separate kernel after it (cuBLASLt's GELU
// epilogue is the tanh approximation, and it has no QuickGELU).
func (b *Backend) Linear(out, x, w, bias backend.Tensor, act backend.Act) {
	N, I := rowsCols(x)
	O := w.Shape()[0]
	b.gemm(false, true, N, O, I, 1, ptr(x), I, ptr(w), I, 0, ptr(out), O, ptr(bias), false, 1, 0, 0, 0)
	if act != backend.ActNone {
		b.launchN("activation"+b.suffix, out.Len(), ptr(out), ptr(out), int64(out.Len()), int32(act))
	}
}

// Gemm: c (M,N) = alpha·op(a)·op(b) + beta·c.
func (b *Backend) Gemm(transA, transB bool, alpha float32, a, bm backend.Tensor, beta float32, c backend.Tensor) {
	ar, ac := rowsCols(a)
	br, bc := rowsCols(bm)
	M, K := ar, ac
	if transA {
		M, K = ac, ar
	}
	N := bc
	if transB {
		N = br
	}
	b.gemm(transA, transB, M, N, K, alpha, ptr(a), ac, ptr(bm), bc, beta, ptr(c), N, 0, false, 1, 0, 0, 0)
}

// LayerNorm over the last dim; statistics kept in float32 when asked for.
func (b *Backend) LayerNorm(out, x, gamma, beta backend.Tensor, eps float32, mean, rstd backend.Tensor) {
	N, C := rowsCols(x)
	var m, r *Tensor
	if mean != nil || rstd != nil {
		if b.prec == F32 {
			m, r = tt(mean), tt(rstd)
		} else {
			m, r = b.scratchF32(N), b.scratchF32(N)
		}
	}
	b.launchRows("layernorm"+b.suffix, N, C, ptr(out), ptr(x), ptr(gamma), ptr(beta), ptr0(m), ptr0(r), int32(C), eps)
	if b.prec != F32 && m != nil {
		if mean != nil {
			b.launchN("f32_to_bf16", N, ptr(mean), m.buf.Ptr, int64(N))
		}
		if rstd != nil {
			b.launchN("f32_to_bf16", N, ptr(rstd), r.buf.Ptr, int64(N))
		}
		b.free(m, r)
	}
}

func ptr0(t *Tensor) uintptr {
	if t == nil {
		return 0
	}
	return t.buf.Ptr
}

// Attention: heads split out of qkv, scores = q·kᵀ in float32 by a strided
// batched GEMM over B·H, a scaled (causal) softmax kernel, probs·v by a second
// batched GEMM, heads merged back.
func (b *Backend) Attention(out, qkv backend.Tensor, B, T, H int, causal bool, probs backend.Tensor) {
	b.attention(out, qkv, nil, B, T, H, causal, probs)
}

// AttentionBias is Attention with bias (G,H,T,T) added to the scaled scores
// (batch entry b takes bias[b mod G]) by the softmax kernel attn_softmax_bias.
func (b *Backend) AttentionBias(out, qkv, bias backend.Tensor, B, T, H int, probs backend.Tensor) {
	if bias == nil || bias.Len() == 0 || bias.Len()%(H*T*T) != 0 || B%(bias.Len()/(H*T*T)) != 0 {
		panic(fmt.Sprintf("cuda: AttentionBias: bias does not fit B=%d H=%d T=%d", B, H, T))
	}
	b.attention(out, qkv, bias, B, T, H, false, probs)
}

func (b *Backend) attention(out, qkv, bias backend.Tensor, B, T, H int, causal bool, probs backend.Tensor) {
	C := out.Shape()[len(out.Shape())-1]
	D := C / H
	BH := B * H
	q, k, v := b.scratch(BH, T, D), b.scratch(BH, T, D), b.scratch(BH, T, D)
	b.launchN("split_heads"+b.suffix, B*T*C, q.buf.Ptr, k.buf.Ptr, v.buf.Ptr, ptr(qkv), int32(B), int32(T), int32(H), int32(D))
	scores := b.scratchF32(BH, T, T)
	td, tt2 := int64(T*D), int64(T*T)
	b.gemm(false, true, T, T, D, 1, q.buf.Ptr, D, k.buf.Ptr, D, 0, scores.buf.Ptr, T, 0, true, BH, td, td, tt2)
	p := tt(probs)
	if p == nil {
		p = b.scratch(BH, T, T)
	}
	if bias == nil {
		b.launchRows("attn_softmax"+b.suffix, BH*T, T, p.buf.Ptr, scores.buf.Ptr, int32(T), float32(1/math.Sqrt(float64(D))), boolInt(causal))
	} else {
		b.launchRows("attn_softmax_bias"+b.suffix, BH*T, T, p.buf.Ptr, scores.buf.Ptr, ptr(bias), int32(T), int32(H),
			int32(bias.Len()/(H*T*T)), float32(1/math.Sqrt(float64(D))))
	}
	heads := b.scratch(BH, T, D)
	b.gemm(false, false, T, D, T, 1, p.buf.Ptr, T, v.buf.Ptr, D, 0, heads.buf.Ptr, D, 0, false, BH, tt2, td, td)
	b.launchN("merge_heads"+b.suffix, B*T*C, ptr(out), heads.buf.Ptr, int32(B), int32(T), int32(H), int32(D))
	if probs == nil {
		b.free(p)
	}
	b.free(q, k, v, scores, heads)
}

func boolInt(v bool) int32 {
	if v {
		return 1
	}
	return 0
}

// SwiGLU: out (N,F) = silu(x[:, :F])·x[:, F:].
func (b *Backend) SwiGLU(out, x backend.Tensor) {
	N, F := rowsCols(out)
	b.launchN("swiglu"+b.suffix, N*F, ptr(out), ptr(x), int64(N), int32(F))
}

// Activation: out = act(x).
func (b *Backend) Activation(out, x backend.Tensor, act backend.Act) {
	b.launchN("activation"+b.suffix, x.Len(), ptr(out), ptr(x), int64(x.Len()), int32(act))
}

// Add: out = a + b.
func (b *Backend) Add(out, a, bt backend.Tensor) {
	b.launchN("add"+b.suffix, a.Len(), ptr(out), ptr(a), ptr(bt), int64(a.Len()))
}

// AddPeriodic: out = x + p[row mod T].
func (b *Backend) AddPeriodic(out, x, p backend.Tensor, T int) {
	N, C := rowsCols(x)
	b.launchN("add_periodic"+b.suffix, N*C, ptr(out), ptr(x), ptr(p), int64(N), int32(C), int32(T))
}

// Embedding: out = table[ids].
func (b *Backend) Embedding(out, table backend.Tensor, ids []int32) {
	_, C := rowsCols(table)
	d := b.uploadInt32(ids)
	b.launchN("embedding"+b.suffix, len(ids)*C, ptr(out), ptr(table), d.buf.Ptr, int64(len(ids)), int32(C))
	b.free(d)
}

func int32s(rows []int) []int32 {
	r := make([]int32, len(rows))
	for i, v := range rows {
		r[i] = int32(v)
	}
	return r
}

// GatherRows: out = x[rows].
func (b *Backend) GatherRows(out, x backend.Tensor, rows []int) {
	_, C := rowsCols(x)
	d := b.uploadInt32(int32s(rows))
	b.launchN("gather_rows"+b.suffix, len(rows)*C, ptr(out), ptr(x), d.buf.Ptr, int64(len(rows)), int32(C))
	b.free(d)
}

// L2Normalize rows.
func (b *Backend) L2Normalize(out, x backend.Tensor) {
	N, C := rowsCols(x)
	b.launchRows("l2normalize"+b.suffix, N, C, ptr(out), ptr(x), int32(C))
}

// Patchify: im2col for the patch-embedding convolution.
func (b *Backend) Patchify(out, pixels backend.Tensor, B, S, P int) {
	b.launchN("patchify"+b.suffix, out.Len(), ptr(out), ptr(pixels), int32(B), int32(S), int32(P))
}

// PrependRow: the class token in front of each sequence.
func (b *Backend) PrependRow(out, x, tok backend.Tensor, B, T int) {
	C := tok.Len()
	b.launchN("prepend_row"+b.suffix, B*(T+1)*C, ptr(out), ptr(x), ptr(tok), int32(B), int32(T), int32(C))
}

// Scale: t *= alpha.
func (b *Backend) Scale(t backend.Tensor, alpha float32) {
	b.launchN("scale"+b.suffix, t.Len(), ptr(t), int64(t.Len()), alpha)
}

// CrossEntropy: mean row-wise softmax cross-entropy; accumulates the gradient when asked.
func (b *Backend) CrossEntropy(logits backend.Tensor, targets []int32, dlogits backend.Tensor, scale float32) float32 {
	N, M := rowsCols(logits)
	d := b.uploadInt32(targets)
	loss := b.scratchF32(N)
	b.launchRows("cross_entropy"+b.suffix, N, M, ptr(logits), d.buf.Ptr, loss.buf.Ptr, ptr(dlogits), int32(N), int32(M), scale)
	host := make([]float32, N)
	must(b.dv.CopyToHost(unsafe.Slice((*byte)(unsafe.Pointer(&host[0])), 4*N), loss.buf))
	b.free(d, loss)
	var s float64
	for _, v := range host {
		s += float64(v)
	}
	return float32(s / float64(N))
}

// ---- backward (F32 precision) ----

// LinearBackward: dx += dout·w; dw += doutᵀ·x; dbias += Σ rows of dout.
func (b *Backend) LinearBackward(dx, dw, dbias, dout, x, w backend.Tensor) {
	b.needF32("LinearBackward")
	N, O := rowsCols(dout)
	I := w.Shape()[1]
	if dx != nil {
		b.gemm(false, false, N, I, O, 1, ptr(dout), O, ptr(w), I, 1, ptr(dx), I, 0, false, 1, 0, 0, 0)
	}
	if dw != nil {
		b.gemm(true, false, O, I, N, 1, ptr(dout), O, ptr(x), I, 1, ptr(dw), I, 0, false, 1, 0, 0, 0)
	}
	if dbias != nil {
		must(b.fn("bias_grad").Launch(Dim3{X: uint32((O + 255) / 256)}, Dim3{X: 256}, 0, b.dv.Stream, ptr(dbias), ptr(dout), int64(N), int32(O)))
	}
}

// LayerNormBackward accumulates dx, dgamma, dbeta.
func (b *Backend) LayerNormBackward(dx, dgamma, dbeta, dout, x, gamma, mean, rstd backend.Tensor) {
	b.needF32("LayerNormBackward")
	N, C := rowsCols(x)
	b.launchRows("layernorm_bwd", N, C, ptr(dx), ptr(dgamma), ptr(dbeta), ptr(dout), ptr(x), ptr(gamma), ptr(mean), ptr(rstd), int32(C))
}

// AttentionBackward accumulates dqkv from dout with the forward's qkv and probs.
func (b *Backend) AttentionBackward(dqkv, dout, qkv, probs backend.Tensor, B, T, H int, causal bool) {
	b.needF32("AttentionBackward")
	C := dout.Shape()[len(dout.Shape())-1]
	D := C / H
	BH := B * H
	td, tt2 := int64(T*D), int64(T*T)
	q, k, v := b.scratch(BH, T, D), b.scratch(BH, T, D), b.scratch(BH, T, D)
	b.launchN("split_heads_f32", B*T*C, q.buf.Ptr, k.buf.Ptr, v.buf.Ptr, ptr(qkv), int32(B), int32(T), int32(H), int32(D))
	dO := b.scratch(BH, T, D)
	b.launchN("split_heads1_f32", B*T*C, dO.buf.Ptr, ptr(dout), int32(B), int32(T), int32(H), int32(D))
	p := ptr(probs)
	dq, dk, dv, dp := b.scratch(BH, T, D), b.scratch(BH, T, D), b.scratch(BH, T, D), b.scratch(BH, T, T)
	// dV = Pᵀ·dO; dP = dO·Vᵀ
	b.gemm(true, false, T, D, T, 1, p, T, dO.buf.Ptr, D, 0, dv.buf.Ptr, D, 0, true, BH, tt2, td, td)
	b.gemm(false, true, T, T, D, 1, dO.buf.Ptr, D, v.buf.Ptr, D, 0, dp.buf.Ptr, T, 0, true, BH, td, td, tt2)
	// dS = P∘(dP − Σ P∘dP)·scale (masked entries have P = 0)
	b.launchRows("attn_softmax_bwd", BH*T, T, dp.buf.Ptr, p, int32(T), float32(1/math.Sqrt(float64(D))))
	// dQ = dS·K; dK = dSᵀ·Q
	b.gemm(false, false, T, D, T, 1, dp.buf.Ptr, T, k.buf.Ptr, D, 0, dq.buf.Ptr, D, 0, true, BH, tt2, td, td)
	b.gemm(true, false, T, D, T, 1, dp.buf.Ptr, T, q.buf.Ptr, D, 0, dk.buf.Ptr, D, 0, true, BH, tt2, td, td)
	b.launchN("merge_heads_qkv_bwd", B*T*C, ptr(dqkv), dq.buf.Ptr, dk.buf.Ptr, dv.buf.Ptr, int32(B), int32(T), int32(H), int32(D))
	b.free(q, k, v, dO, dq, dk, dv, dp)
}

// ActivationBackward: dx += dout·act'(x).
func (b *Backend) ActivationBackward(dx, dout, x backend.Tensor, act backend.Act) {
	b.needF32("ActivationBackward")
	b.launchN("activation_bwd", x.Len(), ptr(dx), ptr(dout), ptr(x), int64(x.Len()), int32(act))
}

// AddPeriodicBackward: dp[row mod T] += dout rows.
func (b *Backend) AddPeriodicBackward(dp, dout backend.Tensor, T int) {
	b.needF32("AddPeriodicBackward")
	N, C := rowsCols(dout)
	b.launchN("add_periodic_bwd", N*C, ptr(dp), ptr(dout), int64(N), int32(C), int32(T))
}

// EmbeddingBackward: dtable[ids[n]] += dout[n].
func (b *Backend) EmbeddingBackward(dtable, dout backend.Tensor, ids []int32) {
	b.needF32("EmbeddingBackward")
	_, C := rowsCols(dout)
	d := b.uploadInt32(ids)
	b.launchN("scatter_add_rows", len(ids)*C, ptr(dtable), ptr(dout), d.buf.Ptr, int64(len(ids)), int32(C))
	b.free(d)
}

// GatherRowsBackward: dx[rows[i]] += dout[i].
func (b *Backend) GatherRowsBackward(dx, dout backend.Tensor, rows []int) {
	b.needF32("GatherRowsBackward")
	_, C := rowsCols(dout)
	d := b.uploadInt32(int32s(rows))
	b.launchN("scatter_add_rows", len(rows)*C, ptr(dx), ptr(dout), d.buf.Ptr, int64(len(rows)), int32(C))
	b.free(d)
}

// L2NormalizeBackward accumulates dx.
func (b *Backend) L2NormalizeBackward(dx, dout, x backend.Tensor) {
	b.needF32("L2NormalizeBackward")
	N, C := rowsCols(x)
	b.launchRows("l2normalize_bwd", N, C, ptr(dx), ptr(dout), ptr(x), int32(C))
}

// AdamW: one step with PyTorch's formula.
func (b *Backend) AdamW(param, grad, m, v backend.Tensor, lr, beta1, beta2, eps, wd float32, t int) {
	b.needF32("AdamW")
	bc1 := float32(1 - math.Pow(float64(beta1), float64(t)))
	bc2 := float32(1 - math.Pow(float64(beta2), float64(t)))
	b.launchN("adamw", param.Len(), ptr(param), ptr(grad), ptr(m), ptr(v), int64(param.Len()), lr, beta1, beta2, eps, wd, bc1, bc2)
}

// SumSquares returns Σ t².
func (b *Backend) SumSquares(t backend.Tensor) float64 {
	b.needF32("SumSquares")
	acc := b.newTensor(8, []int{1})
	must(b.dv.Memset(acc.buf.Ptr, 8))
	b.launchN("sum_squares", t.Len(), acc.buf.Ptr, ptr(t), int64(t.Len()))
	var out float64
	must(b.dv.CopyToHost(unsafe.Slice((*byte)(unsafe.Pointer(&out)), 8), acc.buf))
	b.free(acc)
	return out
}

// SuggestBatch is the largest batch, a multiple of 32 between 32 and 1024,
// whose working memory (bytesPerItem each) fits in half of the GPU's free
// memory; the other half stays for weights, cuBLASLt's workspace and the pool.
func (b *Backend) SuggestBatch(bytesPerItem int64) int {
	free, _, err := b.dv.MemInfo()
	if err != nil || bytesPerItem <= 0 {
		return 64
	}
	n := int(int64(free/2) / bytesPerItem)
	return min(max(n/32*32, 32), 1024)
}
