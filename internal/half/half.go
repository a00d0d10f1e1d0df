// Package half converts between float32 and the two 16-bit float formats
// litcache stores: IEEE 754 binary16 (the cache's float16 embeddings,
// safetensors F16) and bfloat16 (safetensors BF16, the GPU's activations).
// Rounding is to nearest, ties to even, as PyTorch and numpy do.
package half

import (
	"math"
	"sync"
)

// F16ToF32 converts IEEE 754 binary16 bits to float32 (exact: every half
// is a float32), subnormals, infinities and NaN included.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN, keeping the payload
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0: // normal: rebias 15 → 127
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// subnormal half: normalise into a float32 normal
	e := uint32(113)
	for man&0x400 == 0 {
		man <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
}

// F32ToF16 converts to binary16 bits with round-to-nearest-even, as
// PyTorch's .half() does; values beyond the range become ±inf, NaN stays NaN.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00 | uint16(man>>13) // quiet NaN
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign // underflows to zero even after rounding
		}
		// subnormal: shift the implicit-one mantissa, round to nearest even
		m := man | 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := m >> shift
		rem := m & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, up to inf: still correct
	}
	return sign | uint16(r)
}

// BF16ToF32 converts bfloat16 bits to float32 (exact).
func BF16ToF32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// F32ToBF16 converts to bfloat16 bits with round-to-nearest-even, as
// PyTorch does; NaN stays NaN.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40 // quiet NaN
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

var (
	tableOnce sync.Once
	table     *[1 << 16]float32
)

// f16Table is every binary16 value as float32 (256 KiB, built on first use):
// a lookup is faster than the bit manipulation in the loops that read whole
// float16 embedding matrices.
func f16Table() *[1 << 16]float32 {
	tableOnce.Do(func() {
		t := new([1 << 16]float32)
		for h := range t {
			t[h] = F16ToF32(uint16(h))
		}
		table = t
	})
	return table
}

// F16ToF32s converts src into dst[:len(src)] (dst must be long enough) and returns it.
func F16ToF32s(dst []float32, src []uint16) []float32 {
	t := f16Table()
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = t[h]
	}
	return dst
}

// F32ToF16s converts src into dst[:len(src)] (dst must be long enough) and returns it.
func F32ToF16s(dst []uint16, src []float32) []uint16 {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = F32ToF16(f)
	}
	return dst
}
