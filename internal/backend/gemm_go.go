package backend

// goGemm is the pure-Go sgemm (row-major, leading dimensions as BLAS).
func goGemm(c *CPU, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cm []float32, ldc int) {
	c.parallel(m, n*k*2, func(lo, hi int) {
		row := make([]float32, k)
		for i := lo; i < hi; i++ {
			crow := cm[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(crow)
			} else if beta != 1 {
				for j := range crow {
					crow[j] *= beta
				}
			}
			if alpha == 0 || k == 0 {
				continue
			}
			// row = alpha · op(a)[i,:]
			for p := 0; p < k; p++ {
				if transA {
					row[p] = alpha * a[p*lda+i]
				} else {
					row[p] = alpha * a[i*lda+p]
				}
			}
			if transB {
				for j := 0; j < n; j++ {
					bj := b[j*ldb : j*ldb+k]
					var s float32
					for p, v := range row {
						s += v * bj[p]
					}
					crow[j] += s
				}
			} else {
				for p, v := range row {
					bp := b[p*ldb : p*ldb+n]
					for j := range crow {
						crow[j] += v * bp[j]
					}
				}
			}
		}
	})
}
