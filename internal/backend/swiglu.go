package backend

import "fmt"

// SwiGLU: out (N,F) = silu(a)·g with a = x[:, :F], g = x[:, F:], x (N,2F),
// silu(a) = a·σ(a) = a / (1 + e^(−a)): Meta's SwiGLUFFN between w12 and w3
// (torch: x1, x2 = x12.chunk(2, -1); F.silu(x1) * x2).
func (c *CPU) SwiGLU(out, x Tensor) {
	n, f2 := rowsCols(x)
	if f2%2 != 0 {
		panic(fmt.Sprintf("backend: cpu: SwiGLU: x %v has an odd last dim", x.Shape()))
	}
	F := f2 / 2
	checkShape2("SwiGLU", "out", out, n, F)
	xd, od := data(x), data(out)
	c.parallel(n, F*24, func(lo, hi int) {
		var buf [256]float32
		for r := lo; r < hi; r++ {
			a, g, o := xd[r*2*F:][:F], xd[r*2*F+F:][:F], od[r*F:][:F]
			for c0 := 0; c0 < F; c0 += len(buf) {
				as := a[c0:min(c0+len(buf), F)]
				e := buf[:len(as)]
				expAffine(e, as, -1, 0)
				gs, os := g[c0:c0+len(as)], o[c0:c0+len(as)]
				for i, v := range as {
					os[i] = v / (1 + e[i]) * gs[i]
				}
			}
		}
	})
}
