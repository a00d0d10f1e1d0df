//go:build amd64 && !purego

package backend

import "golang.org/x/sys/cpu"

// expAffineAVX2 is expAffine on n (a multiple of 8) values, 8 lanes at a time
// (exp_amd64.s), the same polynomial as expf.
//
//go:noescape
func expAffineAVX2(dst, src *float32, n int, a, c float32)

// hasAVX2FMA is fixed at start-up from the CPU's feature bits.
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// expAffine sets dst[i] = e^(a·src[i] + c), the argument clamped to
// [expClampLo, expClampHi]; dst may be src.
func expAffine(dst, src []float32, a, c float32) {
	dst = dst[:len(src)]
	n8 := 0
	if hasAVX2FMA {
		n8 = len(src) &^ 7
		if n8 > 0 {
			expAffineAVX2(&dst[0], &src[0], n8, a, c)
		}
	}
	expAffineGo(dst[n8:], src[n8:], a, c)
}

// geluAVX2 and geluGradAVX2 are the GELU forward and backward on n (a
// multiple of 8) values, 8 lanes at a time (gelu_amd64.s).
//
//go:noescape
func geluAVX2(dst, src *float32, n int)

//go:noescape
func geluGradAVX2(dx, dout, x *float32, n int)

// geluSlice sets out[i] = gelu(x[i]); out may be x.
func geluSlice(out, x []float32) {
	out = out[:len(x)]
	n8 := 0
	if hasAVX2FMA {
		n8 = len(x) &^ 7
		if n8 > 0 {
			geluAVX2(&out[0], &x[0], n8)
		}
	}
	for i, v := range x[n8:] {
		out[n8+i] = gelu(v)
	}
}

// geluGradSlice does dx[i] += dout[i]·gelu'(x[i]).
func geluGradSlice(dx, dout, x []float32) {
	dx, dout = dx[:len(x)], dout[:len(x)]
	n8 := 0
	if hasAVX2FMA {
		n8 = len(x) &^ 7
		if n8 > 0 {
			geluGradAVX2(&dx[0], &dout[0], &x[0], n8)
		}
	}
	for i, v := range x[n8:] {
		dx[n8+i] += dout[n8+i] * actGrad(v, ActGELU)
	}
}
