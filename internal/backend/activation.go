package backend

import "fmt"

// Activations, elementwise: GELU (exact, erf) and QuickGELU (x·σ(1.702x)).

// Activation: out = act(x); out may be x.
func (c *CPU) Activation(out, x Tensor, act Act) {
	od, xd := data(out), data(x)
	mustLen("Activation", "out", len(od), len(xd))
	c.parallel(len(xd), 20, func(lo, hi int) { applyAct(od[lo:hi], xd[lo:hi], act) })
}

// ActivationBackward: dx += dout · act'(x), x the activation's input.
func (c *CPU) ActivationBackward(dx, dout, x Tensor, act Act) {
	dxd, dd, xd := data(dx), data(dout), data(x)
	mustLen("ActivationBackward", "dout", len(dd), len(xd))
	mustLen("ActivationBackward", "dx", len(dxd), len(xd))
	c.parallel(len(xd), 30, func(lo, hi int) {
		xs, ds, gs := xd[lo:hi], dd[lo:hi], dxd[lo:hi]
		switch act {
		case ActQuickGELU:
			quickGELUGrad(gs, ds, xs)
			return
		case ActGELU:
			geluGradSlice(gs, ds, xs)
			return
		}
		for i, v := range xs {
			gs[i] += ds[i] * actGrad(v, act)
		}
	})
}

const quickGELUAlpha = 1.702

// applyAct writes act(x) to out (same length; may alias).
func applyAct(out, x []float32, act Act) {
	out = out[:len(x)]
	switch act {
	case ActNone:
		copy(out, x)
	case ActGELU:
		geluSlice(out, x)
	case ActQuickGELU:
		// x·σ(1.702x) = x / (1 + e^(−1.702x)), the exponentials a chunk at a time.
		var buf [256]float32
		for lo := 0; lo < len(x); lo += len(buf) {
			xs := x[lo:min(lo+len(buf), len(x))]
			e := buf[:len(xs)]
			expAffine(e, xs, -quickGELUAlpha, 0)
			os := out[lo : lo+len(xs)]
			for i, v := range xs {
				os[i] = v / (1 + e[i])
			}
		}
	default:
		panic(fmt.Sprintf("backend: cpu: unknown activation %d", act))
	}
}

// gelu is torch.nn.GELU(approximate="none"): x·Φ(x) = 0.5·x·(1+erf(x/√2)).
func gelu(x float32) float32 { return x * normCDF(x) }

func sigmoid(x float32) float32 { return 1 / (1 + expf(-x)) }

// actGrad is act'(x).
func actGrad(x float32, act Act) float32 {
	switch act {
	case ActNone:
		return 1
	case ActGELU:
		// d/dx x·Φ(x) = Φ(x) + x·φ(x)
		const invSqrt2Pi = 0.3989422804014327
		return normCDF(x) + x*invSqrt2Pi*expNegSq(x, 0.5)
	case ActQuickGELU:
		s := sigmoid(quickGELUAlpha * x)
		return s + quickGELUAlpha*x*s*(1-s)
	default:
		panic(fmt.Sprintf("backend: cpu: unknown activation %d", act))
	}
}

// quickGELUGrad does dx += dout · d/dx[x·σ(αx)] = dout · (s + αx·s·(1−s)),
// s = σ(αx), with the exponentials a chunk at a time.
func quickGELUGrad(dx, dout, x []float32) {
	var buf [256]float32
	for lo := 0; lo < len(x); lo += len(buf) {
		xs := x[lo:min(lo+len(buf), len(x))]
		e := buf[:len(xs)]
		expAffine(e, xs, -quickGELUAlpha, 0)
		ds, gs := dout[lo:lo+len(xs)], dx[lo:lo+len(xs)]
		for i, v := range xs {
			s := 1 / (1 + e[i])
			gs[i] += ds[i] * (s + quickGELUAlpha*v*s*(1-s))
		}
	}
}
