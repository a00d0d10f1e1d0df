package backend

import (
	"fmt"
	"unsafe"

	"github.com/litcache/litcache/internal/native"
)

// OpenBLAS, loaded at run time through internal/native (DESIGN.md decision 1).
// Only cblas_sgemm is used; everything else is Go.

// OpenBLASSpec names the OpenBLAS sonames tried and the LITCACHE_OPENBLAS
// override (a path to the library file).
var OpenBLASSpec = native.Spec{
	Name: "openblas",
	Sonames: []string{
		"libopenblas.so.0", "libopenblas.so",
		"libopenblasp-r0.3.29.so", "libopenblasp-r0.3.28.so", "libopenblasp-r0.3.27.so",
		"libopenblasp-r0.3.26.so", "libopenblasp-r0.3.21.so", "libopenblasp-r0.3.20.so",
	},
	Env: []string{"LITCACHE_OPENBLAS"},
}

const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

type openBLAS struct {
	lib    *native.Library
	sgemmF func(order, transA, transB, m, n, k int32, alpha float32, a unsafe.Pointer, lda int32,
		b unsafe.Pointer, ldb int32, beta float32, c unsafe.Pointer, ldc int32)
	config string
	// setThreads is openblas_set_num_threads (nil when not exported).
	setThreads func(n int32)
}

// loadOpenBLAS opens the library and binds cblas_sgemm (and, when exported,
// openblas_get_config and openblas_set_num_threads).
func loadOpenBLAS() (*openBLAS, error) {
	lib, err := native.Open(OpenBLASSpec)
	if err != nil {
		return nil, err
	}
	b := &openBLAS{lib: lib}
	if err := lib.Bind(&b.sgemmF, "cblas_sgemm"); err != nil {
		return nil, fmt.Errorf("backend: openblas: %w", err)
	}
	if lib.Has("openblas_get_config") {
		var getConfig func() string
		if lib.Bind(&getConfig, "openblas_get_config") == nil {
			b.config = getConfig()
		}
	}
	if lib.Has("openblas_set_num_threads") {
		if lib.Bind(&b.setThreads, "openblas_set_num_threads") != nil {
			b.setThreads = nil
		}
	}
	return b, nil
}

// OpenBLASInfo reports the OpenBLAS library found (path and build config), or
// the error saying why none was loaded. For `litcache doctor`.
func OpenBLASInfo() (string, error) {
	b, err := loadOpenBLAS()
	if err != nil {
		return "", err
	}
	return b.describe(), nil
}

func (b *openBLAS) describe() string {
	s := b.lib.Path
	if b.config != "" {
		s += " (" + b.config + ")"
	}
	return s
}

func (b *openBLAS) sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, cm []float32, ldc int) {
	ta, tb := int32(cblasNoTrans), int32(cblasNoTrans)
	if transA {
		ta = cblasTrans
	}
	if transB {
		tb = cblasTrans
	}
	b.sgemmF(cblasRowMajor, ta, tb, int32(m), int32(n), int32(k), alpha,
		unsafe.Pointer(&a[0]), int32(lda), unsafe.Pointer(&bm[0]), int32(ldb),
		beta, unsafe.Pointer(&cm[0]), int32(ldc))
}

// SgemmFunc is a row-major sgemm: c = alpha·op(a)·op(b) + beta·c with leading
// dimensions lda, ldb, ldc.
type SgemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// OpenBLASSgemm returns OpenBLAS's cblas_sgemm called directly with its own
// thread pool of threads threads, as a program using OpenBLAS alone would
// (the reference `litcache bench matmul` measures against), or the error
// saying why OpenBLAS was not loaded. Each call sets OpenBLAS's thread count
// and puts it back to 1 (the CPU backend's setting) afterwards, so it must not
// run concurrently with a CPU backend's work.
func OpenBLASSgemm(threads int) (SgemmFunc, error) {
	b, err := loadOpenBLAS()
	if err != nil {
		return nil, err
	}
	return func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
		checkGemmLen("a", a, transA, m, k, lda)
		checkGemmLen("b", bm, transB, k, n, ldb)
		checkGemmLen("c", c, false, m, n, ldc)
		if m == 0 || n == 0 || k == 0 {
			return
		}
		if b.setThreads != nil {
			b.setThreads(int32(threads))
			defer b.setThreads(1)
		}
		b.sgemm(transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
	}, nil
}
