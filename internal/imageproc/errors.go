package imageproc

import "errors"

// Sentinel errors; the errors returned by this package wrap them, so callers
// can tell a broken file from an unsupported one with errors.Is. Their text
// has no package prefix because it always appears inside one
// ("imageproc: FILE: jpeg: truncated image data: unexpected EOF").
var (
	// ErrEmpty is returned for a zero-byte input.
	ErrEmpty = errors.New("empty input")
	// ErrFormat is returned when the bytes are neither JPEG nor PNG (by magic
	// bytes, never by file name) or when the data is malformed.
	ErrFormat = errors.New("unsupported or malformed image")
	// ErrTruncated is returned when the compressed data ends early. A
	// truncated JPEG is always an error, even when libjpeg-turbo would only
	// warn and fill the rest of the image with grey.
	ErrTruncated = errors.New("truncated image data")
	// ErrTooLarge is returned, before any pixel memory is allocated, when the
	// header announces an image beyond the decoder's limits.
	ErrTooLarge = errors.New("image too large")
)
