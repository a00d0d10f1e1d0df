package dinov2

import "math"

// Position-table resizing as DinoVisionTransformer.interpolate_pos_encoding
// does it (facebookresearch/dinov2 at 9c7e324), bit for bit on PyTorch 1.13's
// CPU kernels in float32: the patch part of pos_embed, an M×M grid of C
// channels, goes through F.interpolate(mode="bicubic", scale_factor=sf,
// antialias) with sf = (g + interpolate_offset)/M for a g×g input grid; the
// output size is floor(M·sf) and the source coordinates follow 1/sf, not
// M/g (the offset only moves them). The class row is kept.
//
// PyTorch computes in float32 with the rounding of its compiled C++, which
// we reproduce operation by operation (measured against torch 1.13 on
// one-hot inputs over 40+ size pairs and the dinov2-tiny fixture: identical
// bits; see posembed_test.go):
//   - without antialias (upsample_bicubic2d): A = −0.75 cubic convolution,
//     4 taps clamped at the border, the source index in double from the
//     float32 scale 1/sf, its floor taken in float32; the 2-D sum is an outer
//     sum over rows of inner sums over columns, each fused as
//     fma(v3,w3, fma(v2,w2, fma(v0,w0, v1·w1)));
//   - with antialias (_upsample_bicubic2d_aa): Pillow's a = −0.5 filter,
//     the support widened by the downscale factor, weights normalised in
//     float32; separable, columns first, each sum v0·w0 then the remaining
//     taps in blocks of four added unfused, the last (n−1) mod 4 fused.
// The fused multiply-adds are float64 FMAs rounded to float32, which equals
// a float32 FMA except in double-rounding ties (never met in the tests).

// interpSize is the output size F.interpolate gives for scale factor sf.
func interpSize(in int, sf float64) int { return int(math.Floor(float64(in) * sf)) }

// fma32 is a·b + c rounded once (up to double-rounding ties, see above).
func fma32(a, b, c float32) float32 { return float32(math.FMA(float64(a), float64(b), float64(c))) }

// taps are one output sample's source indices (already clamped) and weights.
type taps struct {
	idx []int
	w   []float32
}

// cubicTaps are upsample_bicubic2d's 4-tap weights for an axis of in → out
// samples at scale factor sf (compute_indices_weights_cubic + the
// get_cubic_upsample_coefficients polynomials as compiled).
func cubicTaps(in int, sf float64) []taps {
	out := interpSize(in, sf)
	scale := float32(1 / sf)
	res := make([]taps, out)
	for i := range res {
		r := float64(scale)*(float64(i)+0.5) - 0.5
		ii := int(math.Floor(float64(float32(r))))
		t := float32(r - float64(ii))
		x2 := 1 - t
		w := []float32{cubic2(t + 1), cubic1(t), cubic1(x2), cubic2(x2 + 1)}
		idx := make([]int, 4)
		for j := range idx {
			idx[j] = min(max(ii-1+j, 0), in-1)
		}
		res[i] = taps{idx, w}
	}
	return res
}

const cubicA = float32(-0.75)

// cubic1 is ((A+2)·x − (A+3))·x·x + 1 for |x| ≤ 1, its first product fused.
func cubic1(x float32) float32 {
	u := fma32(cubicA+2, x, -(cubicA + 3))
	u = u * x
	return float32(u*x) + 1 // the conversion keeps Go from fusing: PyTorch rounds here
}

// cubic2 is ((A·x − 5A)·x + 8A)·x − 4A for 1 ≤ |x| ≤ 2, the first two steps fused.
func cubic2(x float32) float32 {
	u := fma32(cubicA, x, -5*cubicA)
	u = fma32(u, x, 8*cubicA)
	return float32(u*x) - 4*cubicA
}

// sum4 is upsample_bicubic2d's 4-tap sum as compiled.
func sum4(v0, v1, v2, v3 float32, w []float32) float32 {
	s := fma32(v0, w[0], float32(v1*w[1]))
	s = fma32(v2, w[2], s)
	return fma32(v3, w[3], s)
}

// resizeBicubic resizes src (M,M,C) to (g,g,C), g = floor(M·sf), without antialias.
func resizeBicubic(src []float32, M, C int, sf float64) ([]float32, int) {
	tp := cubicTaps(M, sf)
	g := len(tp)
	out := make([]float32, g*g*C)
	at := func(y, x, c int) float32 { return src[(y*M+x)*C+c] }
	for y, ty := range tp {
		for x, tx := range tp {
			o := out[(y*g+x)*C:][:C]
			for c := range o {
				var rows [4]float32
				for i, iy := range ty.idx {
					rows[i] = sum4(at(iy, tx.idx[0], c), at(iy, tx.idx[1], c), at(iy, tx.idx[2], c), at(iy, tx.idx[3], c), tx.w)
				}
				o[c] = sum4(rows[0], rows[1], rows[2], rows[3], ty.w)
			}
		}
	}
	return out, g
}

// aaTaps are _upsample_bicubic2d_aa's weights (Pillow's filter, support
// widened by the downscale factor) for an axis of in → out samples.
func aaTaps(in int, sf float64) []taps {
	out := interpSize(in, sf)
	scale := float32(1 / sf)
	support, invscale := float32(2), float32(1)
	if scale >= 1 {
		support = float32(2 * float64(scale))
		invscale = float32(1 / float64(scale))
	}
	res := make([]taps, out)
	for i := range res {
		center := float32(float64(scale) * (float64(i) + 0.5))
		xmin := max(int(float64(center-support)+0.5), 0)
		xsize := min(int(float64(center+support)+0.5), in) - xmin
		t := taps{idx: make([]int, max(xsize, 0)), w: make([]float32, max(xsize, 0))}
		var total float32
		for j := range t.w {
			arg := float32((float64(float32(j+xmin)-center) + 0.5) * float64(invscale))
			t.w[j] = aaFilter(arg)
			t.idx[j] = xmin + j
			total += t.w[j]
		}
		if total != 0 {
			for j := range t.w {
				t.w[j] /= total
			}
		}
		res[i] = t
	}
	return res
}

// aaFilter is the antialias kernel's bicubic filter (Pillow's, a = −0.5):
// the inner branch in double, the outer one in float32 with two fused steps.
func aaFilter(x float32) float32 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		d := float64(x)
		return float32(((a+2)*d-(a+3))*d*d + 1)
	}
	if x < 2 {
		u := fma32(x-5, x, 8)
		u = fma32(u, x, -4)
		return float32(float64(u) * a)
	}
	return 0
}

// sumAA is the antialias kernel's n-tap sum as compiled (see the file comment).
func sumAA(v func(j int) float32, w []float32) float32 {
	if len(w) == 0 {
		return 0
	}
	s := v(0) * w[0]
	m := len(w) - 1
	block := m / 4 * 4
	for j := 1; j < len(w); j++ {
		if j-1 < block {
			s = s + float32(v(j)*w[j])
		} else {
			s = fma32(v(j), w[j], s)
		}
	}
	return s
}

// resizeBicubicAA resizes src (M,M,C) to (g,g,C) with antialias: columns, then rows.
func resizeBicubicAA(src []float32, M, C int, sf float64) ([]float32, int) {
	tp := aaTaps(M, sf)
	g := len(tp)
	tmp := make([]float32, M*g*C) // (M rows, g columns, C)
	for y := 0; y < M; y++ {
		for x, tx := range tp {
			for c := 0; c < C; c++ {
				tmp[(y*g+x)*C+c] = sumAA(func(j int) float32 { return src[(y*M+tx.idx[j])*C+c] }, tx.w)
			}
		}
	}
	out := make([]float32, g*g*C)
	for y, ty := range tp {
		for x := 0; x < g; x++ {
			for c := 0; c < C; c++ {
				out[(y*g+x)*C+c] = sumAA(func(j int) float32 { return tmp[(ty.idx[j]*g+x)*C+c] }, ty.w)
			}
		}
	}
	return out, g
}

// ResizePositions returns the position table used for a g×g patch grid:
// pos (1+M², C) is the trained table (class row first); offset and
// antialias are the model's interpolate_offset and interpolate_antialias.
// With g = M the table is returned unchanged, as the reference does (no
// interpolation at the trained size). The result is (1+g², C).
func ResizePositions(pos []float32, M, C, g int, offset float64, antialias bool) ([]float32, error) {
	if len(pos) != (1+M*M)*C {
		return nil, errorf("position table has %d values, want (1+%d²)·%d", len(pos), M, C)
	}
	if g == M {
		return append([]float32(nil), pos...), nil
	}
	// sx = (g + offset) / sqrt(N) in Python floats.
	sf := (float64(g) + offset) / math.Sqrt(float64(M*M))
	var patch []float32
	var got int
	if antialias {
		patch, got = resizeBicubicAA(pos[C:], M, C, sf)
	} else {
		patch, got = resizeBicubic(pos[C:], M, C, sf)
	}
	if got != g {
		// The reference asserts the same: floor(M·sf) must be g.
		return nil, errorf("resizing the %d×%d position table by %.17g gives %d×%d, not %d×%d (interpolate_offset %g)", M, M, sf, got, got, g, g, offset)
	}
	return append(append(make([]float32, 0, (1+g*g)*C), pos[:C]...), patch...), nil
}
