package backend

import (
	"fmt"
	"math"
)

// Softmax cross-entropy of logits (N,M) against integer targets, the core of
// the CLIP contrastive loss (one call per direction).

// CrossEntropy returns the mean over rows of −log softmax(logits)[target]; when
// dlogits is not nil it accumulates scale·(softmax − onehot)/N into it.
func (c *CPU) CrossEntropy(logits Tensor, targets []int32, dlogits Tensor, scale float32) float32 {
	n, m := rowsCols(logits)
	if len(targets) != n {
		panic(fmt.Sprintf("backend: cpu: CrossEntropy: %d targets for %d rows", len(targets), n))
	}
	ld := data(logits)
	var gd []float32
	if dlogits != nil {
		gd = data(dlogits)
		mustLen("CrossEntropy", "dlogits", len(gd), len(ld))
	}
	losses := make([]float64, n)
	g := float64(scale) / float64(n)
	c.parallel(n, m*10, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			t := int(targets[r])
			if t < 0 || t >= m {
				panic(fmt.Sprintf("backend: cpu: CrossEntropy: target %d of row %d outside %d classes", t, r, m))
			}
			// float32 exponentials (2 ulp), summed in float64.
			xs := ld[r*m : r*m+m]
			mx := float32(math.Inf(-1))
			for _, v := range xs {
				mx = max(mx, v)
			}
			var sum float64
			for _, v := range xs {
				sum += float64(expf(v - mx))
			}
			lse := float64(mx) + math.Log(sum)
			losses[r] = lse - float64(xs[t])
			if gd != nil {
				gs := gd[r*m : r*m+m]
				inv := 1 / sum
				for j, v := range xs {
					p := float64(expf(v-mx)) * inv
					if j == t {
						p--
					}
					gs[j] += float32(g * p)
				}
			}
		}
	})
	var total float64
	for _, l := range losses {
		total += l
	}
	if n == 0 {
		return 0
	}
	return float32(total / float64(n))
}
