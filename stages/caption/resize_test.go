package caption

import (
	"image"
	"math"
	"testing"

	"golang.org/x/image/draw"

	"github.com/litcache/litcache/internal/imageproc"
)

// TestDownscale compares --max-size's downscale (imageproc.Resize, Pillow's
// antialiased bicubic) with x/image/draw's
// CatmullRom (also an antialiased cubic, but a = −0.5 differs only in edge
// handling): the mean absolute difference must stay under 1.5 levels on a
// smooth picture, and a flat image must stay exactly flat.
func TestDownscale(t *testing.T) {
	cases := []struct{ W, H, w, h int }{{200, 150, 100, 75}, {150, 200, 40, 53}, {64, 48, 20, 15}, {90, 90, 89, 89}}
	for _, tc := range cases {
		src := imageproc.NewRGB(tc.W, tc.H)
		for y := 0; y < tc.H; y++ {
			for x := 0; x < tc.W; x++ {
				i := (y*tc.W + x) * 3
				src.Pix[i] = uint8(255 * x / tc.W)
				src.Pix[i+1] = uint8(255 * y / tc.H)
				src.Pix[i+2] = uint8(128 + 100*math.Sin(float64(x+y)/9))
			}
		}
		got := imageproc.Resize(src, tc.w, tc.h)
		ref := image.NewRGBA(image.Rect(0, 0, tc.w, tc.h))
		draw.CatmullRom.Scale(ref, ref.Bounds(), src, src.Bounds(), draw.Src, nil)
		var sum float64
		for i := range got.Pix { // got is RGB, ref RGBA
			sum += math.Abs(float64(got.Pix[i]) - float64(ref.Pix[i/3*4+i%3]))
		}
		mean := sum / float64(len(got.Pix))
		if mean > 1.5 {
			t.Errorf("%dx%d → %dx%d: mean abs difference %.2f levels vs x/image CatmullRom", tc.W, tc.H, tc.w, tc.h, mean)
		}
		flat := imageproc.NewRGB(tc.W, tc.H)
		for i := range flat.Pix {
			flat.Pix[i] = 77
		}
		for i, v := range imageproc.Resize(flat, tc.w, tc.h).Pix {
			if v != 77 {
				t.Fatalf("flat image changed: %d at %d", v, i)
			}
		}
	}
}
