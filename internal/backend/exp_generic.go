//go:build !amd64 || purego

package backend

// expAffine sets dst[i] = e^(a·src[i] + c), the argument clamped to
// [expClampLo, expClampHi]; dst may be src.
func expAffine(dst, src []float32, a, c float32) { expAffineGo(dst, src, a, c) }

// geluSlice sets out[i] = gelu(x[i]); out may be x.
func geluSlice(out, x []float32) {
	out = out[:len(x)]
	for i, v := range x {
		out[i] = gelu(v)
	}
}

// geluGradSlice does dx[i] += dout[i]·gelu'(x[i]).
func geluGradSlice(dx, dout, x []float32) {
	dx, dout = dx[:len(x)], dout[:len(x)]
	for i, v := range x {
		dx[i] += dout[i] * actGrad(v, ActGELU)
	}
}
