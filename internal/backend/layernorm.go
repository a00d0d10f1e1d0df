package backend

import (
	"fmt"
	"math"
)

// LayerNorm over the last dim C of x (N,C); mean, rstd (N) kept for backward.

// LayerNorm: out (N,C) = (x-mean)·rstd·gamma + beta, statistics in float64.
func (c *CPU) LayerNorm(out, x, gamma, beta Tensor, eps float32, mean, rstd Tensor) {
	n, ch := rowsCols(x)
	xd, od, gd, bd := data(x), data(out), data(gamma), data(beta)
	mustLen("LayerNorm", "out", len(od), len(xd))
	mustLen("LayerNorm", "gamma", len(gd), ch)
	mustLen("LayerNorm", "beta", len(bd), ch)
	var md, rd []float32
	if mean != nil {
		md = data(mean)
		mustLen("LayerNorm", "mean", len(md), n)
	}
	if rstd != nil {
		rd = data(rstd)
		mustLen("LayerNorm", "rstd", len(rd), n)
	}
	c.parallel(n, ch*8, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xs := xd[r*ch : r*ch+ch]
			os := od[r*ch : r*ch+ch]
			var s float64
			for _, v := range xs {
				s += float64(v)
			}
			mu := s / float64(ch)
			var ss float64
			for _, v := range xs {
				d := float64(v) - mu
				ss += d * d
			}
			rs := 1 / math.Sqrt(ss/float64(ch)+float64(eps))
			m32, r32 := float32(mu), float32(rs)
			g, b := gd[:len(xs)], bd[:len(xs)]
			for i, v := range xs {
				os[i] = (v-m32)*r32*g[i] + b[i]
			}
			if md != nil {
				md[r] = m32
			}
			if rd != nil {
				rd[r] = r32
			}
		}
	})
}

// LayerNormBackward: dx, dgamma, dbeta += gradients from dout (N,C), given x,
// gamma and the forward's mean and rstd.
//
//	xhat = (x-mean)·rstd, dxhat = dout·gamma
//	dx = rstd · (dxhat − mean(dxhat) − xhat·mean(dxhat·xhat))
func (c *CPU) LayerNormBackward(dx, dgamma, dbeta, dout, x, gamma, mean, rstd Tensor) {
	n, ch := rowsCols(x)
	xd, dd, gd, md, rd := data(x), data(dout), data(gamma), data(mean), data(rstd)
	mustLen("LayerNormBackward", "dout", len(dd), len(xd))
	mustLen("LayerNormBackward", "gamma", len(gd), ch)
	mustLen("LayerNormBackward", "mean", len(md), n)
	mustLen("LayerNormBackward", "rstd", len(rd), n)
	if dx != nil {
		dxd := data(dx)
		mustLen("LayerNormBackward", "dx", len(dxd), len(xd))
		c.parallel(n, ch*8, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				xs, ds, gs := xd[r*ch:r*ch+ch], dd[r*ch:r*ch+ch], dxd[r*ch:r*ch+ch]
				mu, rs := md[r], rd[r]
				var sd, sdx float64
				for i, v := range xs {
					dxh := float64(ds[i] * gd[i])
					sd += dxh
					sdx += dxh * float64((v-mu)*rs)
				}
				sd /= float64(ch)
				sdx /= float64(ch)
				for i, v := range xs {
					xh := float64((v - mu) * rs)
					dxh := float64(ds[i] * gd[i])
					gs[i] += float32(float64(rs) * (dxh - sd - xh*sdx))
				}
			}
		})
	}
	if dgamma == nil && dbeta == nil {
		return
	}
	var dg, db []float32
	if dgamma != nil {
		dg = data(dgamma)
		mustLen("LayerNormBackward", "dgamma", len(dg), ch)
	}
	if dbeta != nil {
		db = data(dbeta)
		mustLen("LayerNormBackward", "dbeta", len(db), ch)
	}
	// Split over channels: each goroutine owns its columns of dgamma, dbeta.
	c.parallel(ch, n*4, func(lo, hi int) {
		for r := 0; r < n; r++ {
			xs, ds := xd[r*ch+lo:r*ch+hi], dd[r*ch+lo:r*ch+hi]
			mu, rs := md[r], rd[r]
			for i, v := range xs {
				if dg != nil {
					dg[lo+i] += ds[i] * (v - mu) * rs
				}
				if db != nil {
					db[lo+i] += ds[i]
				}
			}
		}
	})
}

// checkShape2 panics unless t is a matrix of rows×cols.
func checkShape2(op, name string, t Tensor, rows, cols int) {
	r, c := rowsCols(t)
	if r != rows || c != cols {
		panic(fmt.Sprintf("backend: cpu: %s: %s has shape %v, want (%d,%d)", op, name, t.Shape(), rows, cols))
	}
}
