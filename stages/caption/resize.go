package caption

import (
	"image"
	"math"

	"github.com/litcache/litcache/internal/imageproc"
)

// Downscaling for --max-size: a separable bicubic (a = −0.5) whose support
// widens with the scale factor, as PIL's Image.resize(BICUBIC) and
// thumbnail() do, so that downscaled photos are antialiased rather than
// aliased. Letters: W,H input size; w,h output size.

// cubic is the Keys bicubic kernel with a = −0.5 (PIL's).
func cubic(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	switch {
	case x < 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// precision is the fixed-point scale of the weights (PIL uses 22 bits with
// int64 sums; 14 bits keep the int32 sums of 8-bit values exact enough).
const precision = 14

// filterTaps returns, for each of out output positions, the first input
// index of its window; every window has the same number of taps n (padded
// with zero weights and kept inside the input), weights[i*n:(i+1)*n]
// summing to 1<<precision.
func filterTaps(in, out int) (starts []int, n int, weights []int32) {
	scale := float64(in) / float64(out)
	fs := math.Max(scale, 1)
	support := 2 * fs
	n = min(int(math.Ceil(support))*2+1, in)
	starts = make([]int, out)
	weights = make([]int32, out*n)
	ws := make([]float64, n)
	for i := 0; i < out; i++ {
		center := (float64(i) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		start := min(lo, in-n)
		clear(ws)
		var sum float64
		for x := lo; x < hi; x++ {
			k := cubic((float64(x) - center + 0.5) / fs)
			ws[x-start] = k
			sum += k
		}
		w := weights[i*n : (i+1)*n]
		for j := range ws {
			if sum != 0 {
				w[j] = int32(math.Round(ws[j] / sum * (1 << precision)))
			}
		}
		starts[i] = start
	}
	return starts, n, weights
}

// scaler holds a worker's buffers between images.
type scaler struct {
	tmp []uint8
}

// downscale resizes src (RGB, HWC) to w×h into an RGBA image ready for the
// JPEG encoder: a horizontal pass into 8-bit rows (H,w,3), then a vertical
// pass, both in fixed point, as PIL's ImagingResample does.
func (sc *scaler) downscale(src *imageproc.RGB, w, h int) *image.RGBA {
	W, H := src.W, src.H
	xs, xn, xw := filterTaps(W, w)
	ys, yn, yw := filterTaps(H, h)
	if cap(sc.tmp) < w*H*3 {
		sc.tmp = make([]uint8, w*H*3)
	}
	tmp := sc.tmp[:w*H*3]
	const half = 1 << (precision - 1)
	for y := 0; y < H; y++ {
		row := src.Pix[y*W*3 : (y+1)*W*3]
		out := tmp[y*w*3 : (y+1)*w*3]
		for x := 0; x < w; x++ {
			r, g, b := int32(half), int32(half), int32(half)
			px := row[xs[x]*3 : (xs[x]+xn)*3]
			ws := xw[x*xn : (x+1)*xn]
			for len(px) >= 3 && len(ws) > 0 {
				k := ws[0]
				r += k * int32(px[0])
				g += k * int32(px[1])
				b += k * int32(px[2])
				px, ws = px[3:], ws[1:]
			}
			out[3*x], out[3*x+1], out[3*x+2] = clip8(r), clip8(g), clip8(b)
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	acc := make([]int32, w*3)
	for y := 0; y < h; y++ {
		for i := range acc {
			acc[i] = half
		}
		for j, k := range yw[y*yn : (y+1)*yn] {
			if k == 0 {
				continue
			}
			in := tmp[(ys[y]+j)*w*3 : (ys[y]+j+1)*w*3]
			in = in[:len(acc)]
			for i, v := range in {
				acc[i] += k * int32(v)
			}
		}
		o := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
		for x := 0; x < w; x++ {
			o[4*x] = clip8(acc[3*x])
			o[4*x+1] = clip8(acc[3*x+1])
			o[4*x+2] = clip8(acc[3*x+2])
			o[4*x+3] = 255
		}
	}
	return dst
}

// clip8 turns a fixed-point sum into a byte.
func clip8(v int32) uint8 {
	v >>= precision
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}
