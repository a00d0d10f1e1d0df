package bundle

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"golang.org/x/image/webp"

	"github.com/litcache/litcache/internal/imageproc"
)

// Photo decoding for field use: JPEG and PNG through imageproc (libjpeg-turbo
// when present), WebP through golang.org/x/image/webp, each turned upright
// by its EXIF orientation, sizes checked against the limits from the header
// before any pixel is decoded.

// FieldLimits are the default photo limits of predict and serve: 50
// megapixels (phone cameras' default modes stay below), 16384 px a side.
func FieldLimits() imageproc.Limits { return imageproc.Limits{MaxSide: 16384, MaxPixels: 50_000_000} }

// DecodePhoto decodes a JPEG, PNG or WebP photo to RGB, refusing (with an
// error wrapping imageproc.ErrTooLarge) one whose header announces more than
// lim allows. The EXIF orientation is recorded in the result (the bundle's
// preprocessing applies it).
func DecodePhoto(data []byte, lim imageproc.Limits) (*imageproc.RGB, error) {
	if isWebP(data) {
		m, err := decodeWebP(data, lim)
		if err != nil {
			return nil, fmt.Errorf("webp: %w", err)
		}
		return m, nil
	}
	return imageproc.Decoder{Limits: lim}.DecodeRGB(data)
}

// Prepare decodes a photo (DecodePhoto) and preprocesses it for the tower:
// pixels (3,S,S).
func (b *Bundle) Prepare(data []byte, lim imageproc.Limits) ([]float32, error) {
	m, err := DecodePhoto(data, lim)
	if err != nil {
		return nil, err
	}
	return b.pre.Transform(m, nil), nil
}

func isWebP(data []byte) bool {
	return len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP"
}

func decodeWebP(data []byte, lim imageproc.Limits) (*imageproc.RGB, error) {
	cfg, err := webp.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", imageproc.ErrFormat, err)
	}
	w, h := cfg.Width, cfg.Height
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("%w: header gives size %d×%d", imageproc.ErrFormat, w, h)
	}
	if (lim.MaxSide > 0 && (w > lim.MaxSide || h > lim.MaxSide)) || (lim.MaxPixels > 0 && w*h > lim.MaxPixels) {
		return nil, fmt.Errorf("%w: %d×%d exceeds the limit of %d px a side, %d pixels", imageproc.ErrTooLarge, w, h, lim.MaxSide, lim.MaxPixels)
	}
	img, err := webp.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", imageproc.ErrFormat, err)
	}
	m := imageproc.ToRGB(img)
	m.Orientation = WebPOrientation(data)
	return m, nil
}

// WebPOrientation reads the EXIF orientation from a WebP file's EXIF chunk
// (RIFF container: a 4-byte tag, a little-endian 32-bit size, the payload,
// padded to an even length), 0 when there is none.
func WebPOrientation(data []byte) int {
	if !isWebP(data) {
		return 0
	}
	p := 12
	for p+8 <= len(data) {
		tag := string(data[p : p+4])
		n := int64(binary.LittleEndian.Uint32(data[p+4:]))
		if n > int64(len(data)-p-8) {
			return 0
		}
		body := data[p+8 : p+8+int(n)]
		if tag == "EXIF" {
			// Some writers keep JPEG's "Exif\0\0" prefix before the TIFF header.
			body = bytes.TrimPrefix(body, []byte("Exif\x00\x00"))
			return imageproc.TIFFOrientation(body)
		}
		p += 8 + int(n) + int(n&1)
	}
	return 0
}
