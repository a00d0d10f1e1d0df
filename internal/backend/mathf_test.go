package backend

import (
	"math"
	"testing"
)

// The float32 functions against float64 math over their working ranges.
func TestMathf(t *testing.T) {
	cases := []struct {
		name   string
		f      func(float32) float32
		ref    func(float64) float64
		lo, hi float64
		relTol float64 // relative to max(|ref|, absFloor)
		floor  float64
	}{
		// 2 ulp of float32 is 2.4e-7.
		{"expf", expf, math.Exp, -87, 88, 3e-7, 0},
		// erf: absolute error against a function bounded by 1.
		{"erff", erff, math.Erf, -9, 9, 0, 3e-7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var worst, at float64
			for x := c.lo; x <= c.hi; x += 1.37e-3 {
				x32 := float32(x)
				got := float64(c.f(x32))
				want := c.ref(float64(x32))
				e := math.Abs(got-want) / math.Max(math.Abs(want)*boolf(c.relTol > 0), c.floor+boolf(c.relTol > 0)*1e-300)
				if c.relTol == 0 {
					e = math.Abs(got - want)
				}
				if e > worst || math.IsNaN(e) {
					worst, at = e, x
				}
			}
			tol := c.relTol + c.floor
			if worst > tol {
				t.Errorf("worst error %.3g at x=%g > %.3g", worst, at, tol)
			}
		})
	}
	if !math.IsInf(float64(expf(100)), 1) || expf(-200) != 0 || expf(0) != 1 {
		t.Errorf("expf edges: exp(100)=%g exp(-200)=%g exp(0)=%g", expf(100), expf(-200), expf(0))
	}
	if erff(0) != 0 || erff(20) != 1 || erff(-20) != -1 {
		t.Errorf("erff edges: %g %g %g", erff(0), erff(20), erff(-20))
	}
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// The activations element by element, relative error, tails included:
// gelu(−10) ≈ −7.6e−23 must still be right to float32 precision. They run
// over the whole grid at once, as the ops call them (vector exp included).
func TestActivationsElementwise(t *testing.T) {
	gelu64 := func(x float64) float64 { return 0.5 * x * math.Erfc(-x/math.Sqrt2) }
	geluGrad64 := func(x float64) float64 {
		return 0.5*math.Erfc(-x/math.Sqrt2) + x*math.Exp(-0.5*x*x)/math.Sqrt(2*math.Pi)
	}
	qg64 := func(x float64) float64 { return x / (1 + math.Exp(-1.702*x)) }
	qgGrad64 := func(x float64) float64 {
		s := 1 / (1 + math.Exp(-1.702*x))
		return s + 1.702*x*s*(1-s)
	}
	fwd := func(act Act) func([]float32) []float32 {
		return func(xs []float32) []float32 {
			out := make([]float32, len(xs))
			applyAct(out, xs, act)
			return out
		}
	}
	bwd := func(act Act) func([]float32) []float32 {
		return func(xs []float32) []float32 {
			be := NewCPU()
			dx := be.Zeros(len(xs))
			ones := make([]float32, len(xs))
			for i := range ones {
				ones[i] = 1
			}
			be.ActivationBackward(dx, be.FromFloat32(ones, len(xs)), be.FromFloat32(xs, len(xs)), act)
			return Data(dx)
		}
	}
	cases := []struct {
		name string
		f    func([]float32) []float32
		ref  func(float64) float64
		tol  float64
		// floor bounds the denominator below: the derivatives cross zero
		// (gelu' near x = −0.75, quick_gelu' near −1.3) by cancellation of
		// terms ≈ 0.2, where only an absolute error (≤ 2e-7) means something.
		floor float64
	}{
		{"gelu", fwd(ActGELU), gelu64, 2e-6, 0},
		{"gelu'", bwd(ActGELU), geluGrad64, 2e-6, 0.1},
		{"quick_gelu", fwd(ActQuickGELU), qg64, 2e-6, 0},
		{"quick_gelu'", bwd(ActQuickGELU), qgGrad64, 2e-6, 0.1},
	}
	var xs []float32
	for x := -12.0; x <= 10; x += 7.3e-4 {
		xs = append(xs, float32(x))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.f(xs)
			var worst, at float64
			for i, x32 := range xs {
				want := c.ref(float64(x32))
				if math.Abs(want) < 1e-35 {
					continue
				}
				e := math.Abs(float64(got[i])-want) / math.Max(math.Abs(want), c.floor)
				if e > worst || math.IsNaN(e) {
					worst, at = e, float64(x32)
				}
			}
			if worst > c.tol {
				t.Errorf("worst relative error %.3g at x=%g > %.3g", worst, at, c.tol)
			}
		})
	}
}

// expAffine (AVX2 where available, scalar tail) against math.Exp, at lengths
// that leave every tail size, with aliasing.
func TestExpAffine(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 31, 200} {
		src := make([]float32, n)
		for i := range src {
			src[i] = float32(i)*0.731 - 70 // spans [-70, 76]
		}
		dst := make([]float32, n)
		expAffine(dst, src, -1.25, 3)
		for i, v := range src {
			// The argument a·x+c is rounded to float32 once (FMA) or twice;
			// e^x turns its rounding error (|x|·6e-8) into a relative error.
			lo, hi := float64(float32(expClampLo)), float64(float32(expClampHi))
			arg := math.Min(math.Max(-1.25*float64(v)+3, lo), hi)
			want := math.Exp(arg)
			tol := 3e-7 + math.Abs(arg)*1.2e-7
			if e := math.Abs(float64(dst[i])-want) / want; e > tol || math.IsNaN(e) {
				t.Errorf("n=%d: e^%g = %g, want %g (relative error %.3g > %.3g)", n, arg, dst[i], want, e, tol)
			}
		}
		cp := append([]float32(nil), src...)
		expAffine(cp, cp, -1.25, 3)
		for i := range cp {
			if cp[i] != dst[i] {
				t.Fatalf("n=%d: in place differs at %d: %g vs %g", n, i, cp[i], dst[i])
			}
		}
	}
	// Saturation instead of Inf and subnormals.
	d := make([]float32, 8)
	expAffine(d, []float32{-1000, 1000, 0, 0, 0, 0, 0, 0}, 1, 0)
	if d[0] <= 0 || d[0] > 2e-38 || math.IsInf(float64(d[1]), 0) || d[1] < 1e38 || d[2] != 1 {
		t.Errorf("saturation: e^-1000 = %g, e^1000 = %g, e^0 = %g", d[0], d[1], d[2])
	}
}
