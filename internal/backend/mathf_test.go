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
// gelu(−10) ≈ −7.6e−23 must still be right to float32 precision.
func TestActivationsElementwise(t *testing.T) {
	gelu64 := func(x float64) float64 { return 0.5 * x * math.Erfc(-x/math.Sqrt2) }
	geluGrad64 := func(x float64) float64 {
		return 0.5*math.Erfc(-x/math.Sqrt2) + x*math.Exp(-0.5*x*x)/math.Sqrt(2*math.Pi)
	}
	qg64 := func(x float64) float64 { return x / (1 + math.Exp(-1.702*x)) }
	cases := []struct {
		name string
		f    func(float32) float32
		ref  func(float64) float64
		tol  float64
		// floor bounds the denominator below: gelu' = Φ(x) + x·φ(x) crosses
		// zero near x = −0.75 by cancellation of terms ≈ 0.2, where only an
		// absolute error (≤ 2e-7) means something.
		floor float64
	}{
		{"gelu", gelu, gelu64, 2e-6, 0},
		{"gelu'", func(x float32) float32 { return actGrad(x, ActGELU) }, geluGrad64, 2e-6, 0.1},
		{"quick_gelu", func(x float32) float32 { return x * sigmoid(quickGELUAlpha*x) }, qg64, 2e-6, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var worst, at float64
			for x := -12.0; x <= 10; x += 7.3e-4 {
				x32 := float32(x)
				want := c.ref(float64(x32))
				if want == 0 || math.Abs(want) < 1e-35 {
					continue
				}
				e := math.Abs(float64(c.f(x32))-want) / math.Max(math.Abs(want), c.floor)
				if e > worst || math.IsNaN(e) {
					worst, at = e, x
				}
			}
			if worst > c.tol {
				t.Errorf("worst relative error %.3g at x=%g > %.3g", worst, at, c.tol)
			}
		})
	}
}
