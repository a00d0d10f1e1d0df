package store

import "math"

// F16ToF32 converts IEEE 754 half-precision bit patterns to float32:
// dst[i] = src[i], len(dst) ≥ len(src). Exact (every half is a float32).
func F16ToF32(dst []float32, src []uint16) []float32 {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = HalfToFloat(h)
	}
	return dst
}

// F32ToF16 converts float32 to half-precision bit patterns with round to
// nearest, ties to even (as numpy's astype(float16) and PyTorch's .half()).
func F32ToF16(dst []uint16, src []float32) []uint16 {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = FloatToHalf(f)
	}
	return dst
}

// HalfToFloat converts one half-precision bit pattern to float32.
func HalfToFloat(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0x1f: // inf, nan
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: mant · 2⁻²⁴, exact in float32
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// FloatToHalf converts one float32 to half precision, round to nearest even;
// values beyond the half range become ±inf, NaN stays NaN.
func FloatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 { // half subnormal (or zero)
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rem > halfway || (rem == halfway && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent: the right answer, up to inf
	}
	return sign | uint16(h)
}
