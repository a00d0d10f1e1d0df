package backend

import "math"

// Optimizer ops: one AdamW step and the squared norm for gradient clipping.

// AdamW does one step of torch.optim.AdamW on param with grad and moments m, v:
//
//	param *= 1 − lr·wd
//	m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//	param −= (lr/(1−β1^t)) · m / (sqrt(v)/sqrt(1−β2^t) + eps)
func (c *CPU) AdamW(param, grad, m, v Tensor, lr, beta1, beta2, eps, wd float32, t int) {
	pd, gd, md, vd := data(param), data(grad), data(m), data(v)
	mustLen("AdamW", "grad", len(gd), len(pd))
	mustLen("AdamW", "m", len(md), len(pd))
	mustLen("AdamW", "v", len(vd), len(pd))
	if t < 1 {
		t = 1
	}
	bc1 := 1 - math.Pow(float64(beta1), float64(t))
	bc2 := 1 - math.Pow(float64(beta2), float64(t))
	stepSize := float32(float64(lr) / bc1)
	bc2Sqrt := float32(math.Sqrt(bc2))
	decay := 1 - lr*wd
	c.parallel(len(pd), 20, func(lo, hi int) {
		ps, gs, ms, vs := pd[lo:hi], gd[lo:hi], md[lo:hi], vd[lo:hi]
		for i, g := range gs {
			p := ps[i] * decay
			mi := beta1*ms[i] + (1-beta1)*g
			vi := beta2*vs[i] + (1-beta2)*g*g
			ms[i], vs[i] = mi, vi
			denom := float32(math.Sqrt(float64(vi)))/bc2Sqrt + eps
			ps[i] = p - stepSize*mi/denom
		}
	})
}

// SumSquares returns Σ t², accumulated in float64.
func (c *CPU) SumSquares(t Tensor) float64 {
	d := data(t)
	var parts [64]float64
	chunks := min(c.threads, len(parts))
	size := (len(d) + chunks - 1) / max(chunks, 1)
	c.parallel(chunks, size, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			var s float64
			for _, v := range d[min(k*size, len(d)):min((k+1)*size, len(d))] {
				s += float64(v) * float64(v)
			}
			parts[k] = s
		}
	})
	var s float64
	for _, p := range parts[:chunks] {
		s += p
	}
	return s
}
