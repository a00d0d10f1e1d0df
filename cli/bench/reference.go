package bench

import (
	"fmt"
	"runtime"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/litcache/litcache/internal/backend"
)

// sgemmRef is the matrix-multiply reference of a run, independent of
// litcache's own GEMM: OpenBLAS's cblas_sgemm called directly (the CPU
// ceiling, NOTES.md) when the library loads, else gonum's pure-Go Sgemm, a
// peer. Figures that are matrix-bound (towers, zero-shot scoring) are
// compared with the time the same FLOPs take at its rate.
type sgemmRef struct {
	name string // "OpenBLAS sgemm" or "gonum sgemm"
	note string // why this one
	// linear is out (m,n) = x (m,k) · w (n,k)ᵀ, the layout of every Linear layer.
	linear func(m, n, k int, x, w, out []float32)
}

func newSgemmRef() sgemmRef {
	f, err := backend.OpenBLASSgemm(runtime.GOMAXPROCS(0))
	if err == nil {
		return sgemmRef{
			name: "OpenBLAS sgemm",
			note: "reference: OpenBLAS cblas_sgemm called directly, its own threads",
			linear: func(m, n, k int, x, w, out []float32) {
				f(false, true, m, n, k, 1, x, k, w, k, 0, out, n)
			},
		}
	}
	return sgemmRef{
		name: "gonum sgemm",
		note: fmt.Sprintf("OpenBLAS absent (%v): reference is gonum's pure-Go Sgemm, a peer, not a ceiling", err),
		linear: func(m, n, k int, x, w, out []float32) {
			gonum.Implementation{}.Sgemm(blas.NoTrans, blas.Trans, m, n, k, 1, x, k, w, k, 0, out, n)
		},
	}
}
