package backend

import "math"

// Float32 elementary functions for the activations and the softmax, which run
// once per element of the widest tensors (the MLP's 4·C hidden layer, the
// T×T attention scores). math.Exp and math.Erf work in float64 and cost
// several times more; these keep float32 accuracy (a few ulp) at a fraction.
// The polynomials are Cephes' single-precision ones (expf.c, ndtrf.c).

const (
	expHi = 88.72283935546875   // exp(x) overflows float32 above this
	expLo = -103.97207708399179 // and is 0 below this
)

// expf is e^x in float32: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-7
// polynomial, 2^n by building the exponent bits. Relative error ≤ 2 ulp.
func expf(x float32) float32 {
	switch {
	case x > expHi:
		return float32(math.Inf(1))
	case x < expLo:
		return 0
	case x != x:
		return x
	}
	n := float32(math.Floor(float64(x*math.Log2E + 0.5)))
	// ln2 split in a part exact in float32 and the rest (Cody–Waite).
	r := x - n*0.693359375 + n*2.12194440e-4
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	p = p*r*r + r + 1
	e := int32(n)
	if e < -126 { // subnormal result: scale in two steps
		return p * math.Float32frombits(uint32(e+126+127)<<23) * math.Float32frombits(1<<23)
	}
	if e > 127 {
		return p * 2 * math.Float32frombits(uint32(e-1+127)<<23)
	}
	return p * math.Float32frombits(uint32(e+127)<<23)
}

// erff is erf(x) in float32 (Cephes erff/erfcf): x·T(x²) for |x| < 1,
// 1 − erfc(x) beyond, with erfc from e^(−x²) times a polynomial in 1/x.
func erff(x float32) float32 {
	ax := x
	if ax < 0 {
		ax = -ax
	}
	if ax < 1 {
		z := x * x
		return x * ((((((7.853861353153693e-5*z-8.010193625184903e-4)*z+5.188327685732524e-3)*z-2.685381193529856e-2)*z+1.128358514861418e-1)*z-3.761262582423300e-1)*z + 1.128379165726710)
	}
	e := erfcPos(ax, expNegSq(ax, 1))
	if x < 0 {
		return e - 1
	}
	return 1 - e
}

// erfcPos is erfc(x) for x ≥ 1: e^(−x²)/x · P(1/x²), P by range, with
// z = e^(−x²) given by the caller (who may know x² more exactly than x).
func erfcPos(x, z float32) float32 {
	if x > 10 {
		return 0
	}
	q := 1 / x
	y := q * q
	var p float32
	if x < 2 {
		p = (((((((2.326819970068386e-2*y-1.387039388740657e-1)*y+3.687424674597105e-1)*y-5.824733027278666e-1)*y+6.210004621745983e-1)*y-4.944515323274145e-1)*y+3.404879937665872e-1)*y-2.741127028184656e-1)*y + 5.638259427386472e-1
	} else {
		p = ((((((-1.047766399936249e1*y+1.297719955372516e1)*y-7.495518717768503)*y+2.921019019210786)*y-1.015265279202700)*y+4.218463358204948e-1)*y-2.820767439740514e-1)*y + 5.641895067754075e-1
	}
	return z * q * p
}

// normCDF is Φ(x) = ½·erfc(−x/√2), from erff near 0 and from erfc in the
// tails, so that Φ(x) for x ≪ 0 keeps its relative accuracy.
func normCDF(x float32) float32 {
	u := x * (1 / math.Sqrt2)
	switch {
	case u > -1 && u < 1:
		return 0.5 + 0.5*erff(u)
	case u >= 1:
		return 1 - 0.5*erfcPos(u, expNegSq(x, 0.5))
	default:
		// e^(−u²) from x: u = x/√2 rounded would cost 2u²·6e-8 relative.
		return 0.5 * erfcPos(-u, expNegSq(x, 0.5))
	}
}

// expNegSq is e^(−c·x²) with c·x² formed in float64 (exact for c = 1 or ½)
// and split into float32 head and tail, so that the rounding of x² does not
// cost relative accuracy for large x (x² = 100 rounded in float32 would
// change the result by 4e-6 relative).
func expNegSq(x, c float32) float32 {
	xx := float64(c) * float64(x) * float64(x)
	hi := float32(xx)
	lo := float32(xx - float64(hi))
	return expf(-hi) * (1 - lo)
}

// The range expAffine clamps its argument to: e^x stays a normal float32
// (no subnormals, no overflow), which is all a softmax or a sigmoid needs —
// below e^−87.3 ≈ 1.2e-38 a term no longer changes a sum of terms ≥ 1.
const (
	expClampLo = -87.33654
	expClampHi = 88.02969
)

// expAffineGo is the scalar expAffine.
func expAffineGo(dst, src []float32, a, c float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = expf(min(max(a*v+c, expClampLo), expClampHi))
	}
}
