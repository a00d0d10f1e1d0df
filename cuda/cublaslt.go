package cuda

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/litcache/litcache/internal/native"
)

// cuBLASLt enum values (cublasLt.h, cublas_api.h, library_types.h).
const (
	computeType32F = 68 // CUBLAS_COMPUTE_32F
	dataR32F       = 0  // CUDA_R_32F
	dataR16BF      = 14 // CUDA_R_16BF

	descTransA      = 3
	descTransB      = 4
	descEpilogue    = 7
	descBiasPointer = 8

	layoutBatchCount  = 5
	layoutBatchStride = 6

	prefMaxWorkspace = 1

	opN = 0
	opT = 1

	epilogueDefault  = 1
	epilogueBias     = 4
	epilogueGELU     = 32
	epilogueGELUBias = 36

	heuristicResultSize = 96 // cublasLtMatmulHeuristicResult_t
	workspaceBytes      = 32 << 20
)

// CublasLt holds the bound cuBLASLt functions and one handle.
type CublasLt struct {
	Lib     *native.Library
	Version int

	dv        *Device
	handle    uintptr
	workspace Buffer
	// mu guards plans and keeps a plan's bias-pointer attribute and its
	// matmul together: two goroutines sharing a plan must not interleave them.
	mu    sync.Mutex
	plans map[gemmKey]*gemmPlan

	cublasLtCreate                 func(h *uintptr) int32
	cublasLtGetVersion             func() uint64
	cublasLtMatmulDescCreate       func(d *uintptr, compute int32, scale int32) int32
	cublasLtMatmulDescSetAttribute func(d uintptr, attr int32, buf unsafe.Pointer, size uint64) int32
	cublasLtMatrixLayoutCreate     func(l *uintptr, dtype int32, rows, cols uint64, ld int64) int32
	cublasLtMatrixLayoutSetAttr    func(l uintptr, attr int32, buf unsafe.Pointer, size uint64) int32
	cublasLtMatmulPreferenceCreate func(p *uintptr) int32
	cublasLtMatmulPreferenceSetAtt func(p uintptr, attr int32, buf unsafe.Pointer, size uint64) int32
	cublasLtMatmulAlgoGetHeuristic func(h, desc, a, b, c, d, pref uintptr, requested int32, results unsafe.Pointer, count *int32) int32
	cublasLtMatmul                 func(h, desc uintptr, alpha unsafe.Pointer, A, adesc, B, bdesc uintptr, beta unsafe.Pointer, C, cdesc, D, ddesc uintptr, algo unsafe.Pointer, ws uintptr, wsSize uint64, stream uintptr) int32
	cublasLtGetStatusString        func(s int32) *byte
}

var cublasLtSpec = native.Spec{
	Name:    "cublasLt",
	Sonames: []string{"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so"},
	Env:     []string{"LITCACHE_LIBCUBLASLT"},
}

// LoadCublasLtLibrary binds cuBLASLt without creating a handle (no GPU needed).
func LoadCublasLtLibrary() (*CublasLt, error) {
	lib, err := native.Open(cublasLtSpec)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoCublasLt, err)
	}
	c := &CublasLt{Lib: lib, plans: map[gemmKey]*gemmPlan{}}
	for _, b := range []struct {
		fn   any
		name string
	}{
		{&c.cublasLtCreate, "cublasLtCreate"},
		{&c.cublasLtGetVersion, "cublasLtGetVersion"},
		{&c.cublasLtMatmulDescCreate, "cublasLtMatmulDescCreate"},
		{&c.cublasLtMatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute"},
		{&c.cublasLtMatrixLayoutCreate, "cublasLtMatrixLayoutCreate"},
		{&c.cublasLtMatrixLayoutSetAttr, "cublasLtMatrixLayoutSetAttribute"},
		{&c.cublasLtMatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate"},
		{&c.cublasLtMatmulPreferenceSetAtt, "cublasLtMatmulPreferenceSetAttribute"},
		{&c.cublasLtMatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic"},
		{&c.cublasLtMatmul, "cublasLtMatmul"},
		{&c.cublasLtGetStatusString, "cublasLtGetStatusString"},
	} {
		if err := lib.Bind(b.fn, b.name); err != nil {
			return nil, fmt.Errorf("cuda: %s: %w", lib.Path, err)
		}
	}
	c.Version = int(c.cublasLtGetVersion())
	return c, nil
}

// NewCublasLt loads cuBLASLt and creates a handle and workspace on dv.
func NewCublasLt(dv *Device) (*CublasLt, error) {
	c, err := LoadCublasLtLibrary()
	if err != nil {
		return nil, err
	}
	c.dv = dv
	if err := dv.bind(); err != nil {
		return nil, err
	}
	err = c.check(c.cublasLtCreate(&c.handle), "cublasLtCreate")
	dv.unbind()
	if err != nil {
		return nil, err
	}
	if c.workspace, err = dv.Alloc(workspaceBytes); err != nil {
		return nil, err
	}
	return c, nil
}

// BlasError is a failed cuBLASLt call with the library's status name.
type BlasError struct {
	Call   string
	Status int32
	Name   string
}

func (e *BlasError) Error() string {
	return fmt.Sprintf("cuda: %s: cuBLAS status %d (%s)", e.Call, e.Status, e.Name)
}

func (c *CublasLt) check(s int32, call string) error {
	if s == 0 {
		return nil
	}
	return &BlasError{Call: call, Status: s, Name: goString(c.cublasLtGetStatusString(s))}
}

// Gemm describes D = alpha·op(A)·op(B) + beta·C in cuBLAS's column-major
// terms, with bf16 A, B and D (and C = D), float32 accumulation and an
// optional epilogue (bias and/or GELU), batched with strides when Batch > 1.
type Gemm struct {
	TransA, TransB bool
	M, N, K        int
	LDA, LDB, LDD  int
	Batch          int
	StrideA        int64
	StrideB        int64
	StrideD        int64
	Bias           bool // bias vector of length M
	GELU           bool // tanh-approximate GELU epilogue (cuBLASLt has no erf GELU)
	OutF32         bool // D (and C) in float32 instead of bf16
	InF32          bool // A and B in float32 instead of bf16
}

type gemmKey = Gemm

type gemmPlan struct {
	desc, a, b, d uintptr
	algo          [heuristicResultSize]byte
	none          bool // cuBLASLt offered no algorithm
}

// plan returns g's descriptors and algorithm, made on first use; c.mu is held.
func (c *CublasLt) plan(g Gemm) (*gemmPlan, error) {
	if p, ok := c.plans[g]; ok {
		return p, nil
	}
	p := &gemmPlan{}
	if err := c.check(c.cublasLtMatmulDescCreate(&p.desc, computeType32F, dataR32F), "cublasLtMatmulDescCreate"); err != nil {
		return nil, err
	}
	setDesc := func(attr int32, v int32) error {
		return c.check(c.cublasLtMatmulDescSetAttribute(p.desc, attr, unsafe.Pointer(&v), 4), "cublasLtMatmulDescSetAttribute")
	}
	ta, tb := int32(opN), int32(opN)
	if g.TransA {
		ta = opT
	}
	if g.TransB {
		tb = opT
	}
	ep := int32(epilogueDefault)
	switch {
	case g.Bias && g.GELU:
		ep = epilogueGELUBias
	case g.Bias:
		ep = epilogueBias
	case g.GELU:
		ep = epilogueGELU
	}
	for _, kv := range [][2]int32{{descTransA, ta}, {descTransB, tb}, {descEpilogue, ep}} {
		if err := setDesc(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	layout := func(l *uintptr, dtype int32, rows, cols, ld int, stride int64) error {
		if err := c.check(c.cublasLtMatrixLayoutCreate(l, dtype, uint64(rows), uint64(cols), int64(ld)), "cublasLtMatrixLayoutCreate"); err != nil {
			return err
		}
		if g.Batch > 1 {
			bc := int32(g.Batch)
			if err := c.check(c.cublasLtMatrixLayoutSetAttr(*l, layoutBatchCount, unsafe.Pointer(&bc), 4), "layout batch count"); err != nil {
				return err
			}
			if err := c.check(c.cublasLtMatrixLayoutSetAttr(*l, layoutBatchStride, unsafe.Pointer(&stride), 8), "layout batch stride"); err != nil {
				return err
			}
		}
		return nil
	}
	ar, ac := g.M, g.K
	if g.TransA {
		ar, ac = g.K, g.M
	}
	br, bc := g.K, g.N
	if g.TransB {
		br, bc = g.N, g.K
	}
	outType := int32(dataR16BF)
	if g.OutF32 {
		outType = dataR32F
	}
	inType := int32(dataR16BF)
	if g.InF32 {
		inType = dataR32F
	}
	if err := layout(&p.a, inType, ar, ac, g.LDA, g.StrideA); err != nil {
		return nil, err
	}
	if err := layout(&p.b, inType, br, bc, g.LDB, g.StrideB); err != nil {
		return nil, err
	}
	if err := layout(&p.d, outType, g.M, g.N, g.LDD, g.StrideD); err != nil {
		return nil, err
	}
	var pref uintptr
	if err := c.check(c.cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate"); err != nil {
		return nil, err
	}
	ws := uint64(workspaceBytes)
	if err := c.check(c.cublasLtMatmulPreferenceSetAtt(pref, prefMaxWorkspace, unsafe.Pointer(&ws), 8), "preference workspace"); err != nil {
		return nil, err
	}
	var count int32
	if err := c.check(c.cublasLtMatmulAlgoGetHeuristic(c.handle, p.desc, p.a, p.b, p.d, p.d, pref, 1, unsafe.Pointer(&p.algo[0]), &count), "cublasLtMatmulAlgoGetHeuristic"); err != nil {
		return nil, err
	}
	if count == 0 {
		// Remembered: the backend runs its own kernel for this shape from now on.
		p.none = true
	}
	c.plans[g] = p
	return p, nil
}

// Run queues D = alpha·op(A)·op(B) + beta·C on stream, with C read from c
// (c may be d; with beta = 0 it is not read). bias may be 0 unless g.Bias.
// A shape cuBLASLt has no algorithm for returns an error wrapping
// ErrNoAlgorithm, before anything is queued.
func (c *CublasLt) Run(g Gemm, alpha float32, a, b uintptr, beta float32, cm, d uintptr, bias uintptr, stream uintptr) error {
	if err := c.dv.bind(); err != nil {
		return err
	}
	defer c.dv.unbind()
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.plan(g)
	if err != nil {
		return err
	}
	if p.none {
		return fmt.Errorf("%w for %s", ErrNoAlgorithm, g)
	}
	if g.Bias {
		if err := c.check(c.cublasLtMatmulDescSetAttribute(p.desc, descBiasPointer, unsafe.Pointer(&bias), 8), "bias pointer"); err != nil {
			return err
		}
	}
	if cm == 0 {
		cm = d
	}
	// The algorithm struct is the first 64 bytes of the heuristic result.
	if err := c.check(c.cublasLtMatmul(c.handle, p.desc, unsafe.Pointer(&alpha), a, p.a, b, p.b,
		unsafe.Pointer(&beta), cm, p.d, d, p.d, unsafe.Pointer(&p.algo[0]),
		c.workspace.Ptr, workspaceBytes, stream), "cublasLtMatmul "+g.String()); err != nil {
		return err
	}
	if c.dv.syncLaunches() {
		return c.dv.drv.check(c.dv.drv.cuStreamSynchronize(stream), "cublasLtMatmul "+g.String()+" (synchronised after its launch: LITCACHE_CUDA_SYNC=1)")
	}
	return nil
}

// String describes the GEMM for error messages: "512×3072×1024 NT bf16→bf16 bias batch 1".
func (g Gemm) String() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	in, out := "bf16", "bf16"
	if g.InF32 {
		in = "f32"
	}
	if g.OutF32 {
		out = "f32"
	}
	s := fmt.Sprintf("%d×%d×%d %s%s %s→%s ld %d/%d/%d", g.M, g.N, g.K, t(g.TransA), t(g.TransB), in, out, g.LDA, g.LDB, g.LDD)
	if g.Bias {
		s += " bias"
	}
	if g.GELU {
		s += " gelu"
	}
	if g.Batch > 1 {
		s += fmt.Sprintf(" batch %d strides %d/%d/%d", g.Batch, g.StrideA, g.StrideB, g.StrideD)
	}
	return s
}
