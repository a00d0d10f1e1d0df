package cuda

import (
	"fmt"
	"math"
	"os"
	"sync/atomic"
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

// AttentionPath selects how Attention runs.
type AttentionPath uint8

const (
	// AttentionAuto uses the fused kernel where it applies (bf16, no
	// probabilities wanted, head dim 16/32/64/80/96/128) and the GEMM path
	// elsewhere.
	AttentionAuto AttentionPath = iota
	// AttentionGEMM always runs split → QKᵀ GEMM → softmax → PV GEMM → merge
	// (the ablation the fused kernel is measured against).
	AttentionGEMM
)

// Options select the device and precision of a Backend.
type Options struct {
	Device    int // ordinal among the visible GPUs
	Precision Precision
	// Attention picks the attention path; $LITCACHE_CUDA_ATTENTION=gemm forces AttentionGEMM.
	Attention AttentionPath
	// Unfused turns the fused epilogues off (GELU in the GEMM, residual in
	// the GEMM, add+LayerNorm): the ablation they are measured against.
	// $LITCACHE_CUDA_UNFUSED=1 sets it.
	Unfused bool
}

// Backend implements backend.Backend on one GPU. Ops are queued on the
// device's stream; ToFloat32, CrossEntropy and SumSquares wait for it.
// Every method may be called from any goroutine (see Device). A CUDA
// failure inside an op panics with an *OpError naming the op and carrying
// the driver's error (the interface has no error returns); stages turn it
// into an error with Recover. Memory comes from a pool of size
// classes, so a steady loop over batches allocates nothing after its first
// batch.
type Backend struct {
	dv   *Device
	lt   *CublasLt
	nv   *NVRTC
	prec Precision
	opt  Options

	mods    []*Module
	k       kernelTable
	pool    pool
	elem    uint64 // bytes per element
	suffix  string // kernel name suffix: "_f32" or "_bf16"
	maxGrid uint32
	// fallbacks counts GEMMs run by gemm.cu's kernel for want of a cuBLASLt algorithm.
	fallbacks atomic.Int64
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
	if os.Getenv("LITCACHE_CUDA_ATTENTION") == "gemm" {
		opt.Attention = AttentionGEMM
	}
	if os.Getenv("LITCACHE_CUDA_UNFUSED") == "1" {
		opt.Unfused = true
	}
	dv, err := Open(opt.Device)
	if err != nil {
		return nil, err
	}
	b, err := newBackendOn(dv, opt)
	if err != nil {
		dv.Close()
		return nil, err
	}
	return b, nil
}

func newBackendOn(dv *Device, opt Options) (*Backend, error) {
	nv, err := LoadNVRTC()
	if err != nil {
		return nil, err
	}
	lt, err := NewCublasLt(dv)
	if err != nil {
		return nil, err
	}
	b := &Backend{dv: dv, lt: lt, nv: nv, prec: opt.Precision, opt: opt, maxGrid: uint32(max(dv.SMs, 1) * 32)}
	b.pool.dv = dv
	b.elem, b.suffix = 2, "_bf16"
	if opt.Precision == F32 {
		b.elem, b.suffix = 4, "_f32"
	}
	b.k.f32 = opt.Precision == F32
	if b.mods, err = loadKernels(dv, nv, &b.k); err != nil {
		return nil, err
	}
	return b, nil
}

// SetPaths switches the attention path and the fused epilogues on an open
// backend, for ablation benchmarks that compare them on one model; call it
// between batches, not while another goroutine queues ops.
func (b *Backend) SetPaths(attention AttentionPath, unfused bool) {
	b.opt.Attention, b.opt.Unfused = attention, unfused
}

// Device is the GPU the backend runs on.
func (b *Backend) Device() *Device { return b.dv }

// Precision is the backend's storage type.
func (b *Backend) Precision() Precision { return b.prec }

// Name identifies the backend, e.g. "cuda/bf16 (NVIDIA H100 80GB HBM3, sm_90)".
func (b *Backend) Name() string {
	return fmt.Sprintf("cuda/%s (%s, %s)", b.prec, b.dv.Name, b.dv.Arch())
}

// FallbackGEMMs is how many GEMMs ran on the backend's own kernel because
// cuBLASLt had no algorithm for them (slow; 0 on a healthy setup).
func (b *Backend) FallbackGEMMs() int64 { return b.fallbacks.Load() }

// Sync waits for every queued op.
func (b *Backend) Sync() error { return b.dv.Sync() }

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

// alloc takes a buffer of at least bytes from the pool or the device.
func (b *Backend) alloc(bytes uint64) Buffer {
	buf, err := b.pool.get(bytes)
	must(err)
	return buf
}

func (b *Backend) release(buf Buffer) { b.pool.put(buf) }

// Trim frees every pooled buffer (after a change of batch shape, say).
func (b *Backend) Trim() {
	defer guard("Trim")
	must(b.pool.trim())
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
	defer guard("Zeros")
	t := b.scratch(shape...)
	must(b.dv.Memset(t.buf.Ptr, uint64(t.n)*b.elem))
	return t
}

// FromFloat32 copies data to a new tensor (converted to bf16 on the GPU in
// BF16 precision: a float32 upload plus one kernel is far cheaper than a Go
// conversion loop).
func (b *Backend) FromFloat32(data []float32, shape ...int) backend.Tensor {
	defer guard("FromFloat32")
	if len(data) != numel(shape) {
		panic(fmt.Sprintf("cuda: FromFloat32: %d values for shape %v", len(data), shape))
	}
	t := b.scratch(shape...)
	b.upload(t.buf, data)
	return t
}

// upload queues data into dst on the compute stream. The driver copies
// pageable host memory into its staging memory before cuMemcpyHtoDAsync
// returns (CUDA's documented synchronisation behaviour for pageable
// host-to-device copies), so data may be reused at once and nothing waits.
func (b *Backend) upload(dst Buffer, data []float32) {
	if len(data) == 0 {
		return
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 4*len(data))
	if b.prec == F32 {
		must(b.dv.CopyToDeviceAsync(dst, raw, b.dv.Stream))
		return
	}
	tmp := b.alloc(uint64(len(raw)))
	must(b.dv.CopyToDeviceAsync(tmp, raw, b.dv.Stream))
	must(b.k.launchF32ToBF16(b.gridN(len(data)), dst.Ptr, tmp.Ptr, int64(len(data))))
	b.release(tmp) // stream order: a later user of tmp runs after the kernel
}

func (b *Backend) uploadInt32(vals []int32) *Tensor {
	t := b.newTensor(4, []int{len(vals)})
	if len(vals) > 0 {
		must(b.dv.CopyToDeviceAsync(t.buf, unsafe.Slice((*byte)(unsafe.Pointer(&vals[0])), 4*len(vals)), b.dv.Stream))
	}
	return t
}

// ToFloat32 waits for queued work and copies t to host memory.
func (b *Backend) ToFloat32(t backend.Tensor, dst []float32) []float32 {
	defer guard("ToFloat32")
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
	defer guard("Zero")
	c := tt(t)
	must(b.dv.Memset(c.buf.Ptr, uint64(c.n)*b.elem))
}

// Copy copies src into dst.
func (b *Backend) Copy(dst, src backend.Tensor) {
	defer guard("Copy")
	d, s := tt(dst), tt(src)
	if d.n != s.n {
		panic(fmt.Sprintf("cuda: Copy %v into %v", s.shape, d.shape))
	}
	must(b.dv.CopyDeviceAsync(d.buf.Ptr, s.buf.Ptr, uint64(s.n)*b.elem, b.dv.Stream))
}

// gridN is the launch of a grid-stride kernel over n elements on the
// compute stream (an empty grid when n is 0: launchArgs skips it).
func (b *Backend) gridN(n int) launchConfig {
	grid := uint32(min(int64((n+255)/256), int64(b.maxGrid)))
	return launchConfig{grid: Dim3{X: grid}, block: Dim3{X: 256}, stream: b.dv.Stream}
}

// gridRows is the launch of a one-block-per-row kernel over rows of width cols.
func (b *Backend) gridRows(rows, cols int) launchConfig {
	block := uint32(min(max((cols+31)/32*32, 32), 256))
	return launchConfig{grid: Dim3{X: uint32(rows)}, block: Dim3{X: block}, stream: b.dv.Stream}
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

// ---- forward ----

// Linear: out (N,O) = act(x (N,I) · w (O,I)ᵀ + bias). The bias is fused into
// the GEMM epilogue; in bf16 so is GELU (cuBLASLt's tanh form, within bf16
// rounding of the erf form: |Δ| < 5e-4 against a bf16 step of 4e-3 at 1).
// QuickGELU has no cuBLASLt epilogue and runs as one in-place pass.
func (b *Backend) Linear(out, x, w, bias backend.Tensor, act backend.Act) {
	defer guard("Linear")
	b.linear(out, x, w, bias, nil, act)
}

// Gemm: c (M,N) = alpha·op(a)·op(b) + beta·c.
func (b *Backend) Gemm(transA, transB bool, alpha float32, a, bm backend.Tensor, beta float32, c backend.Tensor) {
	defer guard("Gemm")
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
	b.gemm(gemmCall{transA: transA, transB: transB, M: M, N: N, K: K, alpha: alpha, a: ptr(a), lda: ac, b: ptr(bm), ldb: bc,
		beta: beta, c: ptr(c), ldc: N})
}

// LayerNorm over the last dim; statistics kept in float32 when asked for.
func (b *Backend) LayerNorm(out, x, gamma, beta backend.Tensor, eps float32, mean, rstd backend.Tensor) {
	defer guard("LayerNorm")
	N, C := rowsCols(x)
	var m, r *Tensor
	if mean != nil || rstd != nil {
		if b.prec == F32 {
			m, r = tt(mean), tt(rstd)
		} else {
			m, r = b.scratchF32(N), b.scratchF32(N)
		}
	}
	must(b.k.launchLayernorm(b.gridRows(N, C), ptr(out), ptr(x), ptr(gamma), ptr(beta), ptr0(m), ptr0(r), int32(C), eps))
	if b.prec != F32 && m != nil {
		if mean != nil {
			must(b.k.launchF32ToBF16(b.gridN(N), ptr(mean), m.buf.Ptr, int64(N)))
		}
		if rstd != nil {
			must(b.k.launchF32ToBF16(b.gridN(N), ptr(rstd), r.buf.Ptr, int64(N)))
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

// Attention: the fused kernel (attention.go) where it applies, else heads
// split out of qkv, scores = q·kᵀ in float32 by a strided batched GEMM, a
// scaled (causal) softmax kernel, probs·v by a second batched GEMM, heads
// merged back, with T padded to a multiple of 8 in every stride.
func (b *Backend) Attention(out, qkv backend.Tensor, B, T, H int, causal bool, probs backend.Tensor) {
	defer guard("Attention")
	b.attention(out, qkv, nil, B, T, H, causal, probs)
}

// AttentionBias is Attention with bias (G,H,T,T) added to the scaled scores
// (batch entry b takes bias[b mod G]) by the softmax kernel attn_softmax_bias,
// on the padded GEMM path (the fused kernel takes no bias).
func (b *Backend) AttentionBias(out, qkv, bias backend.Tensor, B, T, H int, probs backend.Tensor) {
	defer guard("AttentionBias")
	if bias == nil || bias.Len() == 0 || bias.Len()%(H*T*T) != 0 || B%(bias.Len()/(H*T*T)) != 0 {
		panic(fmt.Sprintf("cuda: AttentionBias: bias does not fit B=%d H=%d T=%d", B, H, T))
	}
	b.attention(out, qkv, bias, B, T, H, false, probs)
}

func (b *Backend) attention(out, qkv, bias backend.Tensor, B, T, H int, causal bool, probs backend.Tensor) {
	C := out.Shape()[len(out.Shape())-1]
	D := C / H
	if bias == nil && probs == nil && b.flashApplies(qkv, out, C, D) {
		b.flashAttention(out, qkv, B, T, H, D, causal)
		return
	}
	b.gemmAttention(out, qkv, bias, B, T, H, D, causal, probs)
}

func boolInt(v bool) int32 {
	if v {
		return 1
	}
	return 0
}

// SwiGLU: out (N,F) = silu(x[:, :F])·x[:, F:].
func (b *Backend) SwiGLU(out, x backend.Tensor) {
	defer guard("SwiGLU")
	N, F := rowsCols(out)
	must(b.k.launchSwiglu(b.gridN(N*F), ptr(out), ptr(x), int64(N), int32(F)))
}

// Activation: out = act(x).
func (b *Backend) Activation(out, x backend.Tensor, act backend.Act) {
	defer guard("Activation")
	must(b.k.launchActivation(b.gridN(x.Len()), ptr(out), ptr(x), int64(x.Len()), int32(act)))
}

// Add: out = a + b.
func (b *Backend) Add(out, a, bt backend.Tensor) {
	defer guard("Add")
	must(b.k.launchAdd(b.gridN(a.Len()), ptr(out), ptr(a), ptr(bt), int64(a.Len())))
}

// AddPeriodic: out = x + p[row mod T].
func (b *Backend) AddPeriodic(out, x, p backend.Tensor, T int) {
	defer guard("AddPeriodic")
	N, C := rowsCols(x)
	must(b.k.launchAddPeriodic(b.gridN(N*C), ptr(out), ptr(x), ptr(p), int64(N), int32(C), int32(T)))
}

// Embedding: out = table[ids].
func (b *Backend) Embedding(out, table backend.Tensor, ids []int32) {
	defer guard("Embedding")
	_, C := rowsCols(table)
	d := b.uploadInt32(ids)
	must(b.k.launchEmbedding(b.gridN(len(ids)*C), ptr(out), ptr(table), d.buf.Ptr, int64(len(ids)), int32(C)))
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
	defer guard("GatherRows")
	_, C := rowsCols(x)
	d := b.uploadInt32(int32s(rows))
	must(b.k.launchGatherRows(b.gridN(len(rows)*C), ptr(out), ptr(x), d.buf.Ptr, int64(len(rows)), int32(C)))
	b.free(d)
}

// L2Normalize rows.
func (b *Backend) L2Normalize(out, x backend.Tensor) {
	defer guard("L2Normalize")
	N, C := rowsCols(x)
	must(b.k.launchL2normalize(b.gridRows(N, C), ptr(out), ptr(x), int32(C)))
}

// Patchify: im2col for the patch-embedding convolution.
func (b *Backend) Patchify(out, pixels backend.Tensor, B, S, P int) {
	defer guard("Patchify")
	must(b.k.launchPatchify(b.gridN(out.Len()), ptr(out), ptr(pixels), int32(B), int32(S), int32(P)))
}

// PrependRow: the class token in front of each sequence.
func (b *Backend) PrependRow(out, x, tok backend.Tensor, B, T int) {
	defer guard("PrependRow")
	C := tok.Len()
	must(b.k.launchPrependRow(b.gridN(B*(T+1)*C), ptr(out), ptr(x), ptr(tok), int32(B), int32(T), int32(C)))
}

// Scale: t *= alpha.
func (b *Backend) Scale(t backend.Tensor, alpha float32) {
	defer guard("Scale")
	must(b.k.launchScale(b.gridN(t.Len()), ptr(t), int64(t.Len()), alpha))
}

// CrossEntropy: mean row-wise softmax cross-entropy; accumulates the gradient when asked.
func (b *Backend) CrossEntropy(logits backend.Tensor, targets []int32, dlogits backend.Tensor, scale float32) float32 {
	defer guard("CrossEntropy")
	N, M := rowsCols(logits)
	if N == 0 {
		return 0
	}
	d := b.uploadInt32(targets)
	loss := b.scratchF32(N)
	must(b.k.launchCrossEntropy(b.gridRows(N, M), ptr(logits), d.buf.Ptr, loss.buf.Ptr, ptr(dlogits), int32(N), int32(M), scale))
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
	defer guard("LinearBackward")
	b.needF32("LinearBackward")
	N, O := rowsCols(dout)
	I := w.Shape()[1]
	if dx != nil {
		b.gemm(gemmCall{M: N, N: I, K: O, alpha: 1, a: ptr(dout), lda: O, b: ptr(w), ldb: I, beta: 1, c: ptr(dx), ldc: I})
	}
	if dw != nil {
		b.gemm(gemmCall{transA: true, M: O, N: I, K: N, alpha: 1, a: ptr(dout), lda: O, b: ptr(x), ldb: I, beta: 1, c: ptr(dw), ldc: I})
	}
	if dbias != nil {
		// a column reduction over the rows (reduce.go), not a thread per column
		G := b.colsumBlocks(N, O)
		part := b.scratchF32(G * O)
		must(b.colsum(ptr(dbias), ptr(dout), N, O, G, part.buf.Ptr, false))
		b.free(part)
	}
}

// LayerNormBackward accumulates dx, dgamma, dbeta; the gain and bias
// gradients are per-block partial sums added by a second kernel, not
// atomics from every row on the same C addresses (reduce.go).
func (b *Backend) LayerNormBackward(dx, dgamma, dbeta, dout, x, gamma, mean, rstd backend.Tensor) {
	defer guard("LayerNormBackward")
	b.needF32("LayerNormBackward")
	N, C := rowsCols(x)
	G, threads := b.lnBackwardBlocks(N, C)
	part := b.scratchF32(G * 2 * C)
	must(b.lnBackward(ptr(dx), ptr(dgamma), ptr(dbeta), ptr(dout), ptr(x), ptr(gamma), ptr(mean), ptr(rstd), N, C, G, threads, part.buf.Ptr, false))
	b.free(part)
}

// AttentionBackward accumulates dqkv from dout with the forward's qkv and probs.
func (b *Backend) AttentionBackward(dqkv, dout, qkv, probs backend.Tensor, B, T, H int, causal bool) {
	defer guard("AttentionBackward")
	b.needF32("AttentionBackward")
	C := dout.Shape()[len(dout.Shape())-1]
	D := C / H
	BH := B * H
	td, tt2 := int64(T*D), int64(T*T)
	n := B * T * C
	q, k, v := b.scratch(BH, T, D), b.scratch(BH, T, D), b.scratch(BH, T, D)
	must(b.k.launchSplitHeadsF32(b.gridN(n), q.buf.Ptr, k.buf.Ptr, v.buf.Ptr, ptr(qkv), int32(B), int32(T), int32(H), int32(D), int32(T)))
	dO := b.scratch(BH, T, D)
	must(b.k.launchSplitHeads1F32(b.gridN(n), dO.buf.Ptr, ptr(dout), int32(B), int32(T), int32(H), int32(D)))
	p := ptr(probs)
	dq, dk, dv, dp := b.scratch(BH, T, D), b.scratch(BH, T, D), b.scratch(BH, T, D), b.scratch(BH, T, T)
	bat := func(c gemmCall, sa, sb, sc int64) gemmCall {
		c.alpha, c.batch, c.strideA, c.strideB, c.strideC, c.outF32 = 1, BH, sa, sb, sc, true
		return c
	}
	// dV = Pᵀ·dO; dP = dO·Vᵀ
	b.gemm(bat(gemmCall{transA: true, M: T, N: D, K: T, a: p, lda: T, b: dO.buf.Ptr, ldb: D, c: dv.buf.Ptr, ldc: D}, tt2, td, td))
	b.gemm(bat(gemmCall{transB: true, M: T, N: T, K: D, a: dO.buf.Ptr, lda: D, b: v.buf.Ptr, ldb: D, c: dp.buf.Ptr, ldc: T}, td, td, tt2))
	// dS = P∘(dP − Σ P∘dP)·scale (masked entries have P = 0)
	must(b.k.launchAttnSoftmaxBwd(b.gridRows(BH*T, T), dp.buf.Ptr, p, int32(T), float32(1/math.Sqrt(float64(D)))))
	// dQ = dS·K; dK = dSᵀ·Q
	b.gemm(bat(gemmCall{M: T, N: D, K: T, a: dp.buf.Ptr, lda: T, b: k.buf.Ptr, ldb: D, c: dq.buf.Ptr, ldc: D}, tt2, td, td))
	b.gemm(bat(gemmCall{transA: true, M: T, N: D, K: T, a: dp.buf.Ptr, lda: T, b: q.buf.Ptr, ldb: D, c: dk.buf.Ptr, ldc: D}, tt2, td, td))
	must(b.k.launchMergeHeadsQKVBwd(b.gridN(n), ptr(dqkv), dq.buf.Ptr, dk.buf.Ptr, dv.buf.Ptr, int32(B), int32(T), int32(H), int32(D)))
	b.free(q, k, v, dO, dq, dk, dv, dp)
}

// ActivationBackward: dx += dout·act'(x).
func (b *Backend) ActivationBackward(dx, dout, x backend.Tensor, act backend.Act) {
	defer guard("ActivationBackward")
	b.needF32("ActivationBackward")
	must(b.k.launchActivationBwd(b.gridN(x.Len()), ptr(dx), ptr(dout), ptr(x), int64(x.Len()), int32(act)))
}

// AddPeriodicBackward: dp[row mod T] += dout rows.
func (b *Backend) AddPeriodicBackward(dp, dout backend.Tensor, T int) {
	defer guard("AddPeriodicBackward")
	b.needF32("AddPeriodicBackward")
	N, C := rowsCols(dout)
	if N%T != 0 {
		panic(fmt.Sprintf("cuda: AddPeriodicBackward: %d rows are not whole periods of %d", N, T))
	}
	// dout as (N/T, T·C): dp's first T rows are its column sums (reduce.go),
	// instead of N/T atomic adds on every element of dp.
	G := b.colsumBlocks(N/T, T*C)
	part := b.scratchF32(G * T * C)
	must(b.colsum(ptr(dp), ptr(dout), N/T, T*C, G, part.buf.Ptr, false))
	b.free(part)
}

// EmbeddingBackward: dtable[ids[n]] += dout[n].
func (b *Backend) EmbeddingBackward(dtable, dout backend.Tensor, ids []int32) {
	defer guard("EmbeddingBackward")
	b.needF32("EmbeddingBackward")
	_, C := rowsCols(dout)
	d := b.uploadInt32(ids)
	must(b.k.launchScatterAddRows(b.gridN(len(ids)*C), ptr(dtable), ptr(dout), d.buf.Ptr, int64(len(ids)), int32(C)))
	b.free(d)
}

// GatherRowsBackward: dx[rows[i]] += dout[i].
func (b *Backend) GatherRowsBackward(dx, dout backend.Tensor, rows []int) {
	defer guard("GatherRowsBackward")
	b.needF32("GatherRowsBackward")
	_, C := rowsCols(dout)
	d := b.uploadInt32(int32s(rows))
	must(b.k.launchScatterAddRows(b.gridN(len(rows)*C), ptr(dx), ptr(dout), d.buf.Ptr, int64(len(rows)), int32(C)))
	b.free(d)
}

// L2NormalizeBackward accumulates dx.
func (b *Backend) L2NormalizeBackward(dx, dout, x backend.Tensor) {
	defer guard("L2NormalizeBackward")
	b.needF32("L2NormalizeBackward")
	N, C := rowsCols(x)
	must(b.k.launchL2normalizeBwd(b.gridRows(N, C), ptr(dx), ptr(dout), ptr(x), int32(C)))
}

// AdamW: one step with PyTorch's formula.
func (b *Backend) AdamW(param, grad, m, v backend.Tensor, lr, beta1, beta2, eps, wd float32, t int) {
	defer guard("AdamW")
	b.needF32("AdamW")
	bc1 := float32(1 - math.Pow(float64(beta1), float64(t)))
	bc2 := float32(1 - math.Pow(float64(beta2), float64(t)))
	must(b.k.launchAdamw(b.gridN(param.Len()), ptr(param), ptr(grad), ptr(m), ptr(v), int64(param.Len()), lr, beta1, beta2, eps, wd, bc1, bc2))
}

// SumSquares returns Σ t².
func (b *Backend) SumSquares(t backend.Tensor) float64 {
	defer guard("SumSquares")
	b.needF32("SumSquares")
	acc := b.newTensor(8, []int{1})
	must(b.dv.Memset(acc.buf.Ptr, 8))
	must(b.k.launchSumSquares(b.gridN(t.Len()), acc.buf.Ptr, ptr(t), int64(t.Len())))
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
