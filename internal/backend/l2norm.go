package backend

import "math"

// Row-wise L2 normalisation of x (N,C), as torch.nn.functional.normalize
// (norm clamped below at 1e-12).

const l2Eps = 1e-12

// L2Normalize: each row of out = x row / ‖x row‖₂; out may be x.
func (c *CPU) L2Normalize(out, x Tensor) {
	n, ch := rowsCols(x)
	od, xd := data(out), data(x)
	mustLen("L2Normalize", "out", len(od), len(xd))
	c.parallel(n, ch*3, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xs, os := xd[r*ch:r*ch+ch], od[r*ch:r*ch+ch]
			inv := float32(1 / max(rowNorm(xs), l2Eps))
			for i, v := range xs {
				os[i] = v * inv
			}
		}
	})
}

// L2NormalizeBackward: with y = x/‖x‖, dx += (dout − y·(y·dout)) / ‖x‖.
func (c *CPU) L2NormalizeBackward(dx, dout, x Tensor) {
	n, ch := rowsCols(x)
	gd, dd, xd := data(dx), data(dout), data(x)
	mustLen("L2NormalizeBackward", "dout", len(dd), len(xd))
	mustLen("L2NormalizeBackward", "dx", len(gd), len(xd))
	c.parallel(n, ch*5, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xs, ds, gs := xd[r*ch:r*ch+ch], dd[r*ch:r*ch+ch], gd[r*ch:r*ch+ch]
			norm := rowNorm(xs)
			if norm < l2Eps {
				// normalize divides by the clamp: a linear map, no projection.
				for i, v := range ds {
					gs[i] += float32(float64(v) / l2Eps)
				}
				continue
			}
			var dot float64
			for i, v := range xs {
				dot += float64(v) * float64(ds[i])
			}
			inv := 1 / norm
			yd := dot * inv // y·dout
			for i, v := range xs {
				gs[i] += float32((float64(ds[i]) - float64(v)*inv*yd) * inv)
			}
		}
	})
}

func rowNorm(xs []float32) float64 {
	var ss float64
	for _, v := range xs {
		ss += float64(v) * float64(v)
	}
	return math.Sqrt(ss)
}
