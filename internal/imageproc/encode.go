package imageproc

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
)

// Resize resizes the whole image to w×h with Pillow's antialiased bicubic
// (PIL's img.resize((w, h), BICUBIC)).
func Resize(img *RGB, w, h int) *RGB {
	return resizeWindow(img, img.Bounds(), w, h, image.Rect(0, 0, w, h), nil, nil)
}

// EncodeJPEG encodes img with image/jpeg (4:2:0) at quality 1..100.
func EncodeJPEG(img *RGB, quality int) ([]byte, error) {
	var buf bytes.Buffer
	rgba := image.NewRGBA(img.Bounds())
	for i, j := 0, 0; i < len(img.Pix); i, j = i+3, j+4 {
		rgba.Pix[j], rgba.Pix[j+1], rgba.Pix[j+2], rgba.Pix[j+3] = img.Pix[i], img.Pix[i+1], img.Pix[i+2], 0xff
	}
	if err := jpeg.Encode(&buf, rgba, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("imageproc: encode jpeg: %w", err)
	}
	return buf.Bytes(), nil
}

// TestPattern is a deterministic w×h image with smooth colour gradients,
// edges and mild noise, compressing roughly like a photo; for benchmarks
// and tests that must run without real photos.
func TestPattern(w, h int, seed uint64) *RGB {
	rng := rand.New(rand.NewPCG(seed, 0x1a2b3c))
	m := NewRGB(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := (y*w + x) * 3
			r := 255 * x / max(w, 1)
			g := 255 * y / max(h, 1)
			b := 128
			if (x/37+y/29)%2 == 0 {
				b = 200 - r/3
			}
			n := rng.IntN(17) - 8
			m.Pix[i] = uint8(max(0, min(255, r+n)))
			m.Pix[i+1] = uint8(max(0, min(255, g+n)))
			m.Pix[i+2] = uint8(max(0, min(255, b+n)))
		}
	}
	return m
}
