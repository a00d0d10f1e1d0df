package caption

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/png" // DecodeConfig knows PNG
	"io/fs"
	"os"

	"github.com/litcache/litcache/internal/imageproc"
)

// photo is one image ready for a shard.
type photo struct {
	data []byte
	ext  string // "jpg" or "png"
	w, h int
}

// skipError marks an image left out of the shards; its text is the reason
// written to skipped.jsonl.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

func skipf(format string, a ...any) error { return &skipError{fmt.Sprintf(format, a...)} }

// encoder holds one worker's reusable buffers.
type encoder struct {
	maxSize, quality int
	verify           bool
}

// load reads an image file and, with maxSize, downscales and re-encodes it.
// A missing, unreadable or undecodable file is a skipError.
func (e *encoder) load(path string) (*photo, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, skipf("missing: %s", path)
	}
	if err != nil {
		return nil, skipf("unreadable: %v", err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || (format != "jpeg" && format != "png") {
		return nil, skipf("not a JPEG or PNG image: %s", describe(err, format))
	}
	ext := "jpg"
	if format == "png" {
		ext = "png"
	}
	longest := max(cfg.Width, cfg.Height)
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, skipf("corrupt image: size %dx%d", cfg.Width, cfg.Height)
	}
	if e.maxSize == 0 || longest <= e.maxSize {
		if e.verify {
			if _, err := imageproc.DecodeRGB(data); err != nil {
				return nil, skipf("corrupt image: %v", err)
			}
		}
		return &photo{data: data, ext: ext, w: cfg.Width, h: cfg.Height}, nil
	}
	// imageproc decodes with libjpeg-turbo when installed (greyscale and
	// CMYK become RGB; EXIF orientation is not applied, as PIL does not).
	img, err := imageproc.DecodeRGB(data)
	if err != nil {
		return nil, skipf("corrupt image: %v", err)
	}
	w, h := scaledSize(img.W, img.H, e.maxSize)
	// Pillow's antialiased bicubic, as PIL's resize(BICUBIC) and thumbnail() do.
	out, err := imageproc.EncodeJPEG(imageproc.Resize(img, w, h), e.quality)
	if err != nil {
		return nil, fmt.Errorf("caption: encode %s: %w", path, err)
	}
	return &photo{data: out, ext: "jpg", w: w, h: h}, nil
}

func describe(err error, format string) string {
	if err != nil {
		return err.Error()
	}
	return "format " + format
}

// scaledSize fits w×h into a square of side n, keeping the aspect ratio.
func scaledSize(w, h, n int) (int, int) {
	if w >= h {
		return n, max(1, (h*n+w/2)/w)
	}
	return max(1, (w*n+h/2)/h), n
}
