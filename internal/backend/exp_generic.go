//go:build !amd64 || purego

package backend

// expAffine sets dst[i] = e^(a·src[i] + c), the argument clamped to
// [expClampLo, expClampHi]; dst may be src.
func expAffine(dst, src []float32, a, c float32) { expAffineGo(dst, src, a, c) }
