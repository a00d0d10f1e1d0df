package backend

import "fmt"

// Matrix products. Every product in the backend goes through c.sgemm, which
// picks OpenBLAS when loaded and the pure-Go GEMM (gemm_go.go) otherwise.
// Letters: M, N output rows and columns, K the inner dimension.

// Gemm: c (M,N) = alpha · op(a) · op(b) + beta · c.
func (c *CPU) Gemm(transA, transB bool, alpha float32, a, b Tensor, beta float32, cm Tensor) {
	ar, ac := rowsCols(a)
	br, bc := rowsCols(b)
	m, n := rowsCols(cm)
	k, am := ac, ar
	if transA {
		k, am = ar, ac
	}
	bk, bn := br, bc
	if transB {
		bk, bn = bc, br
	}
	if am != m || bn != n || bk != k {
		panic(fmt.Sprintf("backend: cpu: Gemm: shapes a %v (trans %v), b %v (trans %v), c %v do not agree",
			a.Shape(), transA, b.Shape(), transB, cm.Shape()))
	}
	c.sgemm(transA, transB, m, n, k, alpha, data(a), ac, data(b), bc, beta, data(cm), n)
}

// sgemm is BLAS sgemm in row-major order: c = alpha·op(a)·op(b) + beta·c with
// leading dimensions lda, ldb, ldc (the stored row lengths).
func (c *CPU) sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cm []float32, ldc int) {
	c.sgemmEpilogue(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc, nil)
}

// sgemmEpilogue is sgemm followed by epi(lo, hi) over the rows of c (nil: none);
// the pure-Go GEMM runs it on each row block as soon as it is final.
func (c *CPU) sgemmEpilogue(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cm []float32, ldc int, epi func(lo, hi int)) {
	if m == 0 || n == 0 {
		return
	}
	checkGemmLen("a", a, transA, m, k, lda)
	checkGemmLen("b", b, transB, k, n, ldb)
	checkGemmLen("c", cm, false, m, n, ldc)
	if c.blas != nil && k > 0 {
		c.blasGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc)
		if epi != nil {
			c.parallel(m, n*8, epi)
		}
		return
	}
	goGemmEpilogue(c, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc, epi)
}

// checkGemmLen panics unless x holds op(x) of r×cols with leading dimension ld;
// native code must never read past a slice.
func checkGemmLen(name string, x []float32, trans bool, r, cols, ld int) {
	if trans {
		r, cols = cols, r
	}
	if r == 0 || cols == 0 {
		return
	}
	if ld < cols || len(x) < (r-1)*ld+cols {
		panic(fmt.Sprintf("backend: cpu: gemm: %s holds %d values, too few for %d×%d with leading dimension %d", name, len(x), r, cols, ld))
	}
}

// serialGemm is the pure-Go sgemm on the calling goroutine only, for ops that
// already split their work over goroutines (attention per batch and head).
func (c *CPU) serialGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cm []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	checkGemmLen("a", a, transA, m, k, lda)
	checkGemmLen("b", b, transB, k, n, ldb)
	checkGemmLen("c", cm, false, m, n, ldc)
	gemmSerial(c.kernel, c.bufs, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc)
}

// blasGemm runs OpenBLAS sgemm split over the backend's goroutines: row slabs
// of C (or column slabs when C has few rows), each a single-threaded call.
// Without openblas_set_num_threads the library threads itself: one call.
func (c *CPU) blasGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cm []float32, ldc int) {
	const minSlab = 32 // rows or columns per call below which splitting costs more than it gains
	parts := c.threads
	if c.blas.setThreads == nil || int64(m)*int64(n)*int64(k) < 1<<18 {
		parts = 1
	}
	switch {
	case parts > 1 && m >= parts*minSlab:
		c.parallel(parts, 1<<30, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				r0, r1 := m*p/parts, m*(p+1)/parts
				ao := r0 * lda
				if transA {
					ao = r0
				}
				c.blas.sgemm(transA, transB, r1-r0, n, k, alpha, a[ao:], lda, b, ldb, beta, cm[r0*ldc:], ldc)
			}
		})
	case parts > 1 && n >= parts*minSlab:
		c.parallel(parts, 1<<30, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				j0, j1 := n*p/parts, n*(p+1)/parts
				bo := j0
				if transB {
					bo = j0 * ldb
				}
				c.blas.sgemm(transA, transB, m, j1-j0, k, alpha, a, lda, b[bo:], ldb, beta, cm[j0:], ldc)
			}
		})
	default:
		c.blas.sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc)
	}
}
