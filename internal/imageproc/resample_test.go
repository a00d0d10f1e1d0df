package imageproc

import (
	"fmt"
	"image"
	"math"
	"testing"
)

// refResize is Pillow's algorithm in plain float64 (no fixed point), one
// output sample at a time: the integer version must stay within one level of
// it after each pass, so within 2 overall.
func refResize(src *RGB, outW, outH int) []float64 {
	weights := func(in, out, i int) (int, []float64) {
		scale := float64(in) / float64(out)
		fs := math.Max(scale, 1)
		support := 2 * fs
		center := (float64(i) + 0.5) * scale
		lo := max(0, int(center-support+0.5))
		hi := min(in, int(center+support+0.5))
		var w []float64
		sum := 0.0
		for x := lo; x < hi; x++ {
			v := bicubic((float64(x) - center + 0.5) / fs)
			w = append(w, v)
			sum += v
		}
		for k := range w {
			w[k] /= sum
		}
		return lo, w
	}
	tmp := make([]float64, src.H*outW*3)
	for y := 0; y < src.H; y++ {
		for x := 0; x < outW; x++ {
			lo, w := weights(src.W, outW, x)
			for c := 0; c < 3; c++ {
				s := 0.0
				for k, wk := range w {
					s += wk * float64(src.Pix[(y*src.W+lo+k)*3+c])
				}
				tmp[(y*outW+x)*3+c] = math.Max(0, math.Min(255, s))
			}
		}
	}
	out := make([]float64, outH*outW*3)
	for y := 0; y < outH; y++ {
		lo, w := weights(src.H, outH, y)
		for x := 0; x < outW*3; x++ {
			s := 0.0
			for k, wk := range w {
				s += wk * tmp[(lo+k)*outW*3+x]
			}
			out[y*outW*3+x] = math.Max(0, math.Min(255, s))
		}
	}
	return out
}

func TestResizeAgainstFloatReference(t *testing.T) {
	src := TestPattern(61, 47, 9)
	for _, sz := range [][2]int{{20, 15}, {61, 20}, {100, 80}, {7, 90}, {61, 47}} {
		t.Run("", func(t *testing.T) {
			got := Resize(src, sz[0], sz[1])
			want := refResize(src, sz[0], sz[1])
			worst := 0.0
			for i, v := range got.Pix {
				worst = math.Max(worst, math.Abs(float64(v)-want[i]))
			}
			if worst > 2 {
				t.Errorf("%v: max deviation %.2f from the float reference", sz, worst)
			}
		})
	}
}

func TestResizeProperties(t *testing.T) {
	flat := NewRGB(33, 21)
	for i := range flat.Pix {
		flat.Pix[i] = []uint8{0, 77, 255}[i%3]
	}
	for _, sz := range [][2]int{{10, 10}, {70, 5}, {33, 21}, {224, 224}} {
		got := Resize(flat, sz[0], sz[1])
		for i, v := range got.Pix {
			if v != flat.Pix[i%3] {
				t.Fatalf("%v: a flat image changed: %d at %d", sz, v, i)
			}
		}
	}
	src := TestPattern(40, 30, 2)
	if same := Resize(src, 40, 30); string(same.Pix) != string(src.Pix) {
		t.Error("resize to the same size changed pixels")
	}
	// The window is exactly a crop of the full result.
	full := Resize(src, 25, 19)
	win := resizeWindow(src, src.Bounds(), 25, 19, image.Rect(3, 2, 20, 17), newCoeffCache(), nil)
	for y := 0; y < win.H; y++ {
		for x := 0; x < win.W*3; x++ {
			if win.Pix[y*win.W*3+x] != full.Pix[(y+2)*25*3+3*3+x] {
				t.Fatalf("window differs from the full resize at (%d,%d)", x/3, y)
			}
		}
	}
}

func TestCoeffCache(t *testing.T) {
	cc := newCoeffCache()
	a, b := cc.get(500, 224, 0, 224), cc.get(500, 224, 0, 224)
	if a != b {
		t.Error("cache did not return the same coefficients")
	}
	for i := 0; i < coeffCacheMax+10; i++ {
		cc.get(1000+i, 224, 0, 224)
	}
	if len(cc.m) > coeffCacheMax {
		t.Errorf("cache grew to %d", len(cc.m))
	}
	// Weights of each output sum to 1 in fixed point (within rounding).
	c := precomputeCoeffs(2048, 224, 0, 224)
	for i := range c.n {
		s := int32(0)
		for _, k := range c.k[i*c.ksize:][:c.n[i]] {
			s += k
		}
		if d := s - 1<<precisionBits; d < -16 || d > 16 {
			t.Fatalf("output %d: weights sum to %d", i, s)
		}
	}
}

// TestWindowedCoeffs: coefficients for a window of outputs are those of the
// full axis, so a thin image (1×20000: 224×4480000 before the crop) costs
// only its 224 kept outputs.
func TestWindowedCoeffs(t *testing.T) {
	full := precomputeCoeffs(700, 300, 0, 300)
	win := precomputeCoeffs(700, 300, 40, 90)
	for i := 0; i < 50; i++ {
		j := i + 40
		if win.start[i] != full.start[j] || win.n[i] != full.n[j] ||
			fmt.Sprint(win.k[i*win.ksize:][:win.n[i]]) != fmt.Sprint(full.k[j*full.ksize:][:full.n[j]]) {
			t.Fatalf("output %d differs between windowed and full coefficients", j)
		}
	}
	thin := TestPattern(1, 20000, 3)
	p := CLIPPreprocessor(224)
	if r := p.Resized(thin); r.W != 224 || r.H != 224 {
		t.Fatalf("thin image resized to %d×%d", r.W, r.H)
	}
}
