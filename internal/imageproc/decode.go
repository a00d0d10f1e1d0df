// Package imageproc decodes JPEG and PNG images and turns them into CLIP
// inputs as OpenCLIP's transforms do on PIL images: resizing is Pillow's
// antialiased bicubic in its 8-bit fixed-point arithmetic, then centre crop
// and CLIP normalisation. With libjpeg-turbo the decoded pixels are
// libjpeg's and the result equals OpenCLIP's exactly (all 22 fixture
// photos); without it image/jpeg decodes, with libjpeg's colour conversion
// but its own IDCT, and pixels differ by a few levels (mean 0.06, max 4 on
// those photos; NOTES.md).
package imageproc

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"strings"
)

// Limits bound the images a Decoder accepts. They are checked against the
// header before any pixel memory is allocated, so a 40-byte file claiming
// 60000×60000 pixels costs nothing.
type Limits struct {
	// MaxSide is the largest width or height accepted.
	MaxSide int
	// MaxPixels is the largest width·height accepted.
	MaxPixels int
}

// DefaultLimits accepts up to 20000 px a side and 100 megapixels.
func DefaultLimits() Limits { return Limits{MaxSide: 20000, MaxPixels: 100_000_000} }

func (l Limits) check(w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: header gives size %d×%d", ErrFormat, w, h)
	}
	if (l.MaxSide > 0 && (w > l.MaxSide || h > l.MaxSide)) || (l.MaxPixels > 0 && w*h > l.MaxPixels) {
		return fmt.Errorf("%w: %d×%d exceeds the limit of %d px a side, %d pixels", ErrTooLarge, w, h, l.MaxSide, l.MaxPixels)
	}
	return nil
}

// Decoder decodes JPEG and PNG bytes to RGB. The zero value is usable (no
// limits, libjpeg-turbo when present); DefaultDecoder sets the limits.
type Decoder struct {
	Limits Limits
	// PureGo skips libjpeg-turbo even when it is installed.
	PureGo bool
}

// DefaultDecoder has DefaultLimits and uses libjpeg-turbo when present.
func DefaultDecoder() Decoder { return Decoder{Limits: DefaultLimits()} }

// Format names the image format of data by its magic bytes: "jpeg", "png",
// or "" for anything else. File names are never consulted.
func Format(data []byte) string {
	switch {
	case len(data) >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff:
		return "jpeg"
	case len(data) >= 8 && string(data[:8]) == "\x89PNG\r\n\x1a\n":
		return "png"
	}
	return ""
}

// otherFormat gives a readable name to formats that are recognised but not
// supported, for the error message.
func otherFormat(data []byte) string {
	switch {
	case len(data) >= 6 && (string(data[:6]) == "GIF87a" || string(data[:6]) == "GIF89a"):
		return "GIF"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return "WebP"
	case len(data) >= 2 && string(data[:2]) == "BM":
		return "BMP"
	case len(data) >= 4 && (string(data[:4]) == "II*\x00" || string(data[:4]) == "MM\x00*"):
		return "TIFF"
	case len(data) >= 12 && string(data[4:8]) == "ftyp":
		return "HEIF/AVIF"
	}
	return ""
}

// Decode decodes a JPEG or PNG with DefaultDecoder; the image is an *RGB.
func Decode(data []byte) (image.Image, error) {
	return DefaultDecoder().Decode(data)
}

// DecodeRGB decodes a JPEG or PNG with DefaultDecoder.
func DecodeRGB(data []byte) (*RGB, error) {
	return DefaultDecoder().DecodeRGB(data)
}

// DecodeFile reads and decodes a JPEG or PNG with DefaultDecoder; errors
// name the file.
func DecodeFile(path string) (*RGB, error) {
	return DefaultDecoder().DecodeFile(path)
}

// Decode is DecodeRGB returning an image.Image.
func (d Decoder) Decode(data []byte) (image.Image, error) {
	m, err := d.DecodeRGB(data)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeFile reads path and decodes it; errors name the file.
func (d Decoder) DecodeFile(path string) (*RGB, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("imageproc: %w", err)
	}
	m, err := d.decode(data)
	if err != nil {
		return nil, fmt.Errorf("imageproc: %s: %w", path, err)
	}
	return m, nil
}

// DecodeRGB decodes a JPEG or PNG, detected by its magic bytes, to RGB as
// PIL's Image.open(...).convert("RGB") does. The EXIF orientation is recorded
// in the result, not applied.
func (d Decoder) DecodeRGB(data []byte) (*RGB, error) {
	m, err := d.decode(data)
	if err != nil {
		return nil, fmt.Errorf("imageproc: %w", err)
	}
	return m, nil
}

func (d Decoder) decode(data []byte) (*RGB, error) {
	if len(data) == 0 {
		return nil, ErrEmpty
	}
	switch Format(data) {
	case "jpeg":
		m, err := d.decodeJPEG(data)
		if err != nil {
			return nil, fmt.Errorf("jpeg: %w", err)
		}
		m.Orientation = jpegOrientation(data)
		return m, nil
	case "png":
		m, err := d.decodePNG(data)
		if err != nil {
			return nil, fmt.Errorf("png: %w", err)
		}
		m.Orientation = pngOrientation(data)
		return m, nil
	}
	if name := otherFormat(data); name != "" {
		return nil, fmt.Errorf("%w: %s data (only JPEG and PNG are read)", ErrFormat, name)
	}
	head := data[:min(len(data), 8)]
	return nil, fmt.Errorf("%w: not JPEG or PNG (first bytes % x)", ErrFormat, head)
}

func (d Decoder) decodeJPEG(data []byte) (*RGB, error) {
	if !d.PureGo {
		if t, err := loadTurbo(); err == nil {
			m, err := t.decode(data, d.Limits)
			if err == nil {
				return m, nil
			}
			if !errors.Is(err, errTurboRetry) {
				return nil, err
			}
			// An unusual layout or a non-fatal warning: let image/jpeg judge.
		}
	}
	return d.decodeJPEGGo(data)
}

// decodeJPEGGo decodes with image/jpeg only (the turbo path's fallback).
func (d Decoder) decodeJPEGGo(data []byte) (*RGB, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, goErr(err)
	}
	if err := d.Limits.check(cfg.Width, cfg.Height); err != nil {
		return nil, err
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	var unsup jpeg.UnsupportedError
	if errors.As(err, &unsup) && strings.Contains(string(unsup), "Adobe APP14") {
		// libjpeg reads a 4-component JPEG without an Adobe marker as CMYK,
		// and PIL as Adobe-inverted CMYK: the same as an Adobe marker with
		// transform 0, which image/jpeg understands.
		img, err = jpeg.Decode(bytes.NewReader(withAdobeMarker(data)))
	}
	if err != nil {
		return nil, goErr(err)
	}
	return ToRGB(img), nil
}

// withAdobeMarker inserts an APP14 "Adobe" segment with transform 0 (CMYK)
// after SOI.
func withAdobeMarker(data []byte) []byte {
	app14 := []byte{0xff, 0xee, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0}
	out := make([]byte, 0, len(data)+len(app14))
	out = append(out, data[:2]...)
	out = append(out, app14...)
	return append(out, data[2:]...)
}

func (d Decoder) decodePNG(data []byte) (*RGB, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, goErr(err)
	}
	if err := d.Limits.check(cfg.Width, cfg.Height); err != nil {
		return nil, err
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, goErr(err)
	}
	return ToRGB(img), nil
}

// goErr classifies an image/jpeg or image/png error under the sentinels.
func goErr(err error) error {
	// image/jpeg reports data ending inside a scan as "short Huffman data",
	// image/png compressed data ending early as "not enough pixel data".
	var je jpeg.FormatError
	var pe png.FormatError
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.As(err, &je) && strings.Contains(string(je), "short Huffman data") ||
		errors.As(err, &pe) && strings.Contains(string(pe), "not enough pixel data") {
		return fmt.Errorf("%w: %w", ErrTruncated, err)
	}
	return fmt.Errorf("%w: %w", ErrFormat, err)
}
