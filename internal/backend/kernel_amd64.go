//go:build amd64 && !purego

package backend

import "golang.org/x/sys/cpu"

// kernel6x16avx2 is the AVX2+FMA micro-kernel (kernel_amd64.s): a 6×16 tile
// in twelve YMM accumulators, the layout of OpenBLAS's Haswell sgemm kernel.
//
//go:noescape
func kernel6x16avx2(k int, a, b, c *float32, ldc int, acc int)

var avx2Kernel6x16 = gemmKernel{name: "avx2 6x16", mr: 6, nr: 16, fn: func(k int, a, b, c []float32, ldc int, acc bool) {
	if k <= 0 {
		panic("backend: cpu: gemm micro-kernel called with depth 0")
	}
	// The assembly reads 6k of a, 16k of b and a 6×16 tile of c: check once.
	_, _, _ = a[6*k-1], b[16*k-1], c[5*ldc+15]
	add := 0
	if acc {
		add = 1
	}
	kernel6x16avx2(k, &a[0], &b[0], &c[0], ldc, add)
}}

// bestKernel picks the AVX2 micro-kernel when the CPU and OS support AVX2 and
// FMA, else the portable Go one.
func bestKernel() gemmKernel {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		return avx2Kernel6x16
	}
	return goKernel2x4
}
