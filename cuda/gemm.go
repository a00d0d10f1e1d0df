package cuda

import (
	"errors"
	"fmt"

	"github.com/litcache/litcache/internal/backend"
)

// gemmCall is one row-major GEMM as the ops ask for it:
// c (M,N) = alpha·op(a)·op(b) + beta·res + bias (per column), then GELU when
// gelu; res defaults to c (beta = 1 with res = another tensor folds a
// residual add into the GEMM's epilogue). lda/ldb/ldc are the stored row
// lengths; batch > 1 strides each operand by its stride (elements).
type gemmCall struct {
	transA, transB   bool
	M, N, K          int
	alpha            float32
	a                uintptr
	lda              int
	b                uintptr
	ldb              int
	beta             float32
	c                uintptr
	ldc              int
	res              uintptr
	bias             uintptr
	gelu             bool
	outF32           bool
	batch            int
	strideA, strideB int64
	strideC          int64
}

// columnMajor is the call in cuBLAS's terms: row-major C = op(A)·op(B) is
// column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, so the operands swap and M and N swap.
func (g gemmCall) columnMajor(prec Precision) Gemm {
	cm := Gemm{
		TransA: g.transB, TransB: g.transA,
		M: g.N, N: g.M, K: g.K,
		LDA: g.ldb, LDB: g.lda, LDD: g.ldc,
		Batch: g.batch, StrideA: g.strideB, StrideB: g.strideA, StrideD: g.strideC,
		Bias: g.bias != 0, GELU: g.gelu, OutF32: g.outF32 || prec == F32, InF32: prec == F32,
	}
	if g.batch <= 1 {
		cm.Batch, cm.StrideA, cm.StrideB, cm.StrideD = 1, 0, 0, 0
	}
	return cm
}

// gemm runs g through cuBLASLt, or through the backend's own kernel when
// cuBLASLt has no algorithm for it (never a panic for a legal shape).
func (b *Backend) gemm(g gemmCall) {
	if g.M == 0 || g.N == 0 {
		return
	}
	cm := g.columnMajor(b.prec)
	err := b.lt.Run(cm, g.alpha, g.b, g.a, g.beta, g.res, g.c, g.bias, b.dv.Stream)
	if errors.Is(err, ErrNoAlgorithm) {
		err = b.gemmFallback(cm, g)
	}
	must(err)
}

// gemmFallback runs the column-major GEMM cm with gemm.cu's kernel.
func (b *Backend) gemmFallback(cm Gemm, g gemmCall) error {
	b.fallbacks.Add(1)
	if g.res != 0 && g.res != g.c && g.beta != 0 {
		// The kernel reads the addend from its output, as cuBLASLt does with C = D.
		elem := b.elem
		if cm.OutF32 {
			elem = 4
		}
		for z := 0; z < cm.Batch; z++ {
			off := uintptr(int64(z)*cm.StrideD) * uintptr(elem)
			rows, cols := cm.N, cm.M // column-major: N columns of LDD
			if err := b.dv.CopyDeviceAsync(g.c+off, g.res+off, uint64(((rows-1)*cm.LDD+cols))*elem, b.dv.Stream); err != nil {
				return err
			}
		}
	}
	l := launchConfig{
		grid:   Dim3{X: uint32((cm.N + 15) / 16), Y: uint32((cm.M + 15) / 16), Z: uint32(max(cm.Batch, 1))},
		block:  Dim3{X: 16, Y: 16},
		stream: b.dv.Stream,
	}
	A, B := g.b, g.a // the swap of columnMajor
	args := func(run func(launchConfig, uintptr, uintptr, uintptr, uintptr, int32, int32, int32, int32, int32, int32, int64, int64, int64, int32, int32, float32, float32, int32) error) error {
		return run(l, g.c, A, B, g.bias, int32(cm.M), int32(cm.N), int32(cm.K), int32(cm.LDA), int32(cm.LDB), int32(cm.LDD),
			cm.StrideA, cm.StrideB, cm.StrideD, boolInt(cm.TransA), boolInt(cm.TransB), g.alpha, g.beta, boolInt(cm.GELU))
	}
	switch {
	case cm.InF32:
		return args(b.k.launchGemmRefF32)
	case cm.OutF32:
		return args(b.k.launchGemmRefBF16F32)
	default:
		return args(b.k.launchGemmRefBF16)
	}
}

// linear is Linear, with residual (when not nil) added in the GEMM's
// epilogue: out = act(x·wᵀ + bias) or out = x·wᵀ + bias + residual.
func (b *Backend) linear(out, x, w, bias, residual backend.Tensor, act backend.Act) {
	N, I := rowsCols(x)
	O := w.Shape()[0]
	if residual != nil && act != backend.ActNone {
		panic("cuda: linear with both a residual and an activation")
	}
	g := gemmCall{transB: true, M: N, N: O, K: I, alpha: 1, a: ptr(x), lda: I, b: ptr(w), ldb: I, c: ptr(out), ldc: O, bias: ptr(bias)}
	fused := !b.opt.Unfused
	if residual != nil {
		if !fused {
			b.linearThenAdd(out, residual, g)
			return
		}
		g.beta, g.res = 1, ptr(residual)
	}
	// cuBLASLt's GELU is the tanh form: close enough in bf16, not in float32.
	g.gelu = act == backend.ActGELU && fused && b.prec == BF16
	b.gemm(g)
	if act != backend.ActNone && !g.gelu {
		must(b.k.launchActivation(b.gridN(out.Len()), ptr(out), ptr(out), int64(out.Len()), int32(act)))
	}
}

// linearThenAdd is the unfused ablation of the residual epilogue.
func (b *Backend) linearThenAdd(out, residual backend.Tensor, g gemmCall) {
	dst := tt(out)
	if ptr(out) == ptr(residual) {
		dst = b.scratch(out.Shape()...)
		defer b.free(dst)
		g.c = dst.buf.Ptr
	}
	b.gemm(g)
	must(b.k.launchAdd(b.gridN(out.Len()), ptr(out), dst.buf.Ptr, ptr(residual), int64(out.Len())))
}

// LinearResidual: out (N,O) = x (N,I)·w (O,I)ᵀ + bias + residual (N,O), the
// residual read by the GEMM's epilogue (beta = 1) instead of a separate Add
// pass: a transformer block's out_proj and c_proj. out may be residual.
func (b *Backend) LinearResidual(out, x, w, bias, residual backend.Tensor) {
	defer guard("LinearResidual")
	if len(residual.Shape()) == 0 || residual.Len() != out.Len() {
		panic(fmt.Sprintf("cuda: LinearResidual: residual %v for output %v", residual.Shape(), out.Shape()))
	}
	b.linear(out, x, w, bias, residual, backend.ActNone)
}
