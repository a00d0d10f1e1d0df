package backend

import "fmt"

// Residual adds, positional embeddings and scaling.

// Add: out = a + b elementwise; out may be a or b.
func (c *CPU) Add(out, a, b Tensor) {
	od, ad, bd := data(out), data(a), data(b)
	mustLen("Add", "b", len(bd), len(ad))
	mustLen("Add", "out", len(od), len(ad))
	c.parallel(len(ad), 2, func(lo, hi int) {
		o, x, y := od[lo:hi], ad[lo:hi], bd[lo:hi]
		for i := range o {
			o[i] = x[i] + y[i]
		}
	})
}

// AddPeriodic: out (B·T,C) = x + p[row mod T] with p (T',C), T ≤ T'; out may be x.
func (c *CPU) AddPeriodic(out, x, p Tensor, T int) {
	n, ch := rowsCols(x)
	pt, pc := rowsCols(p)
	if pc != ch || T <= 0 || T > pt || n%T != 0 {
		panic(fmt.Sprintf("backend: cpu: AddPeriodic: x %v, p %v, T=%d do not agree", x.Shape(), p.Shape(), T))
	}
	od, xd, pd := data(out), data(x), data(p)
	mustLen("AddPeriodic", "out", len(od), len(xd))
	c.parallel(n, ch, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			o, xs, ps := od[r*ch:r*ch+ch], xd[r*ch:r*ch+ch], pd[(r%T)*ch:(r%T)*ch+ch]
			for i := range o {
				o[i] = xs[i] + ps[i]
			}
		}
	})
}

// AddPeriodicBackward: dp[row mod T] += dout rows (dout (B·T,C), dp (T',C)).
func (c *CPU) AddPeriodicBackward(dp, dout Tensor, T int) {
	n, ch := rowsCols(dout)
	pt, pc := rowsCols(dp)
	if pc != ch || T <= 0 || T > pt || n%T != 0 {
		panic(fmt.Sprintf("backend: cpu: AddPeriodicBackward: dout %v, dp %v, T=%d do not agree", dout.Shape(), dp.Shape(), T))
	}
	pd, dd := data(dp), data(dout)
	// Split over positions: each goroutine owns rows t of dp.
	c.parallel(T, (n/T)*ch, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			acc := pd[t*ch : t*ch+ch]
			for r := t; r < n; r += T {
				for i, v := range dd[r*ch : r*ch+ch] {
					acc[i] += v
				}
			}
		}
	})
}

// Scale: t *= alpha.
func (c *CPU) Scale(t Tensor, alpha float32) {
	d := data(t)
	c.parallel(len(d), 1, func(lo, hi int) {
		for i := range d[lo:hi] {
			d[lo+i] *= alpha
		}
	})
}
