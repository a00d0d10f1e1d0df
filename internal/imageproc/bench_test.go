package imageproc

import (
	"bytes"
	"image/jpeg"
	"os"
	"testing"

	"github.com/litcache/litcache/internal/testutil"
)

// benchInputs are 500×375 q90 JPEGs (the size BASELINES.md measured): a
// synthetic one always, and a real photo re-encoded when the shared data is
// present (that sub-benchmark is skipped otherwise).
func benchInputs(b *testing.B, run func(b *testing.B, data []byte)) {
	b.Run("synthetic", func(b *testing.B) {
		data, err := EncodeJPEG(TestPattern(500, 375, 1), 90)
		if err != nil {
			b.Fatal(err)
		}
		run(b, data)
	})
	b.Run("photo", func(b *testing.B) {
		raw, err := os.ReadFile(testutil.SharedData(b, "photos/camera_traps/ocelot.jpg"))
		if err != nil {
			b.Fatal(err)
		}
		img, err := DecodeRGB(raw)
		if err != nil {
			b.Fatal(err)
		}
		data, err := EncodeJPEG(Resize(img, 500, 375), 90)
		if err != nil {
			b.Fatal(err)
		}
		run(b, data)
	})
}

func BenchmarkDecode(b *testing.B) {
	benchInputs(b, func(b *testing.B, data []byte) {
		b.Run("go", func(b *testing.B) {
			d := Decoder{PureGo: true}
			for b.Loop() {
				if _, err := d.DecodeRGB(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("image-jpeg-only", func(b *testing.B) {
			for b.Loop() {
				if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("turbo", func(b *testing.B) {
			if _, ok := TurboJPEG(); !ok {
				b.Skip("libjpeg-turbo not installed")
			}
			d := Decoder{}
			for b.Loop() {
				if _, err := d.DecodeRGB(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func BenchmarkPreprocess(b *testing.B) {
	p := CLIPPreprocessor(224)
	dst := make([]float32, 3*224*224)
	benchInputs(b, func(b *testing.B, data []byte) {
		img, err := DecodeRGB(data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("resize", func(b *testing.B) {
			for b.Loop() {
				p.Resized(img)
			}
		})
		b.Run("transform", func(b *testing.B) {
			for b.Loop() {
				dst = p.Transform(img, dst)
			}
		})
	})
	big := TestPattern(2048, 1536, 2)
	b.Run("resize2048x1536", func(b *testing.B) {
		for b.Loop() {
			p.Resized(big)
		}
	})
}
