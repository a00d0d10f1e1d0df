package bundle_test

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"testing"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/stages/bundle"
	"github.com/litcache/litcache/stages/bundle/bundletest"
)

func webpWithEXIF(o int) []byte { return bundletest.SolidWebP(4, 3, [3]uint8{200, 40, 10}, o) }

func solidWebP(w, h int, rgb [3]uint8) []byte { return bundletest.SolidWebP(w, h, rgb, 0) }

func TestDecodeWebP(t *testing.T) {
	for _, o := range []int{0, 6} {
		m, err := bundle.DecodePhoto(webpWithEXIF(o), bundle.FieldLimits())
		if err != nil {
			t.Fatalf("orientation %d: %v", o, err)
		}
		if m.W != 4 || m.H != 3 || m.Orientation != o {
			t.Errorf("orientation %d: decoded %d×%d orientation %d", o, m.W, m.H, m.Orientation)
		}
		// Lossless: the colour comes back exactly.
		if p := m.Pix[:3]; p[0] != 200 || p[1] != 40 || p[2] != 10 {
			t.Errorf("pixel %v, want [200 40 10]", p)
		}
	}
}

// A photo's header is checked against the limits before any pixel is
// decoded: a few hundred bytes announcing 16000×16000 (768 MB of RGB) are
// refused with ErrTooLarge, in each format.
func TestDecodeRefusesBombs(t *testing.T) {
	lim := bundle.FieldLimits()
	for name, data := range map[string][]byte{
		"jpeg": bundletest.JPEGBomb(t, 16000, 16000),
		"webp": bundletest.SolidWebP(16000, 16000, [3]uint8{1, 2, 3}, 0),
	} {
		t.Run(name, func(t *testing.T) {
			if len(data) > 1000 {
				t.Fatalf("bomb of %d bytes: not small", len(data))
			}
			_, err := bundle.DecodePhoto(data, lim)
			if !errors.Is(err, imageproc.ErrTooLarge) {
				t.Fatalf("error %v, want ErrTooLarge", err)
			}
		})
	}
	// Within the limits the same WebP trick decodes.
	if _, err := bundle.DecodePhoto(bundletest.SolidWebP(300, 200, [3]uint8{1, 2, 3}, 0), lim); err != nil {
		t.Fatal(err)
	}
}

// EXIF orientation is honoured: a photo stored sideways with orientation 6
// gets exactly the probabilities of the upright photo, and without the tag
// it gets others.
func TestEXIFOrientationHonoured(t *testing.T) {
	b, _ := openTiny(t)
	upright := bundletest.Photo(1, 56, 40)
	probs := func(data []byte) []float32 {
		px, err := b.Prepare(data, bundle.FieldLimits())
		if err != nil {
			t.Fatal(err)
		}
		return mustProbs(t, b, px, 1)
	}
	want := probs(bundletest.RotatedPNG(t, upright, false)) // sideways, no tag
	plain := probs(encodePNG(t, upright))
	tagged := probs(bundletest.RotatedPNG(t, upright, true))
	same := true
	for i := range plain {
		if tagged[i] != plain[i] {
			t.Fatalf("class %d: tagged sideways photo %g, upright %g", i, tagged[i], plain[i])
		}
		same = same && want[i] == plain[i]
	}
	if same {
		t.Fatal("the untagged sideways photo scores like the upright one: the test cannot tell")
	}
}

func encodePNG(t *testing.T, m *imageproc.RGB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	for i, j := 0, 0; i < len(m.Pix); i, j = i+3, j+4 {
		img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = m.Pix[i], m.Pix[i+1], m.Pix[i+2], 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
