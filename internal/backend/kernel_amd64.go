//go:build amd64 && !purego

package backend

//go:generate python3 asm_gen.py

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

// kernel12x32avx512 is the AVX-512 micro-kernel (kernel512_amd64.s): a 12×32
// tile in 24 ZMM accumulators. On cores with full-width 512-bit FMA units
// (Zen 5, Intel server cores) it does twice the work per instruction of the
// AVX2 kernel; on Zen 4, which splits 512-bit operations into two 256-bit
// halves, it is expected to match the AVX2 kernel (not measured there).
//
//go:noescape
func kernel12x32avx512(k int, a, b, c *float32, ldc int, acc int)

var avx512Kernel12x32 = gemmKernel{name: "avx512 12x32", mr: 12, nr: 32, beatsBLAS: true, fn: func(k int, a, b, c []float32, ldc int, acc bool) {
	if k <= 0 {
		panic("backend: cpu: gemm micro-kernel called with depth 0")
	}
	_, _, _ = a[12*k-1], b[32*k-1], c[11*ldc+31]
	add := 0
	if acc {
		add = 1
	}
	kernel12x32avx512(k, &a[0], &b[0], &c[0], ldc, add)
}}

// kernels lists the micro-kernels this CPU and OS can run, best first:
// AVX-512 (AVX-512F), AVX2 (AVX2 and FMA), then the portable Go one.
func kernels() []gemmKernel {
	var ks []gemmKernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernel12x32)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel6x16)
	}
	return append(ks, goKernel2x4)
}
