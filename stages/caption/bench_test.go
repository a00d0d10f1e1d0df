package caption

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/inat/synth"
)

// BenchmarkLoad times one 500px JPEG through the worker's path: passed
// through (read + header) and re-encoded to 256 px.
func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	if err := synth.Generate(dir, synth.Options{Species: 1, TrainPerSpecies: 1, ImageSize: 500, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "train", "*", "*.jpg"))
	path := files[0]
	for _, bc := range []struct {
		name    string
		maxSize int
	}{{"pass", 0}, {"max256", 256}} {
		b.Run(bc.name, func(b *testing.B) {
			enc := &encoder{maxSize: bc.maxSize, quality: 90}
			for i := 0; i < b.N; i++ {
				if _, err := enc.load(path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	data, _ := os.ReadFile(path)
	b.Run("decode", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := imageproc.DecodeRGB(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	img, _ := imageproc.DecodeRGB(data)
	b.Run("downscale", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			imageproc.Resize(img, 256, 192)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	src := imageproc.NewRGB(500, 375)
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7 % 251)
	}
	dst := imageproc.Resize(src, 256, 192)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := imageproc.EncodeJPEG(dst, 90); err != nil {
			b.Fatal(err)
		}
	}
}
