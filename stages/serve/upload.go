package serve

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
)

// httpError is an error with the status it answers.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, a ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, a...)}
}

// UploadField is the multipart form field holding the photo.
const UploadField = "image"

// multipartSlack is what boundaries and part headers may add to a
// multipart body beyond the photo itself.
const multipartSlack = 64 << 10

// maxParts bounds the parts of a multipart body read before the photo.
const maxParts = 16

// readUpload reads a request's photo: the multipart/form-data field
// "image", or else the whole body. It reads at most max bytes of photo (and
// max+multipartSlack of body); beyond that it answers 413. The bytes come
// from outside: every malformed form is a 400, never a panic.
func readUpload(contentType string, body io.Reader, max int64) ([]byte, error) {
	media, params, err := mime.ParseMediaType(contentType)
	if err != nil || media != "multipart/form-data" {
		// A raw body (image/jpeg, application/octet-stream, or none given).
		return readLimited(body, max)
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, errorf(http.StatusBadRequest, "multipart/form-data without a boundary")
	}
	mr := multipart.NewReader(&capReader{r: body, n: max + multipartSlack}, boundary)
	for range maxParts {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, formError(err, max)
		}
		if p.FormName() != UploadField {
			if _, err := io.Copy(io.Discard, p); err != nil {
				return nil, formError(err, max)
			}
			continue
		}
		data, err := readLimited(p, max)
		if err != nil {
			return nil, err
		}
		return data, nil
	}
	return nil, errorf(http.StatusBadRequest, "multipart upload without an %q field (send the photo as the form field %q, or as the raw body)", UploadField, UploadField)
}

// errBodyTooLarge: the body holds more than capReader lets through.
var errBodyTooLarge = errors.New("request body too large")

// capReader reads at most n bytes of r and fails with errBodyTooLarge
// when r holds more.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > c.n+1 {
		p = p[:c.n+1]
	}
	k, err := c.r.Read(p)
	c.n -= int64(k)
	if c.n < 0 {
		return k, errBodyTooLarge
	}
	return k, err
}

func formError(err error, max int64) error {
	if errors.Is(err, errBodyTooLarge) {
		return errorf(http.StatusRequestEntityTooLarge, "upload larger than the limit of %d bytes (%.1f MiB)", max, float64(max)/(1<<20))
	}
	return errorf(http.StatusBadRequest, "malformed multipart body: %v", err)
}

// readLimited reads r whole if it holds at most max bytes.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	switch {
	case errors.Is(err, errBodyTooLarge):
		return nil, formError(err, max)
	case err != nil:
		return nil, errorf(http.StatusBadRequest, "reading the upload: %v", err)
	case int64(len(data)) > max:
		return nil, errorf(http.StatusRequestEntityTooLarge, "upload larger than the limit of %d bytes (%.1f MiB)", max, float64(max)/(1<<20))
	case len(data) == 0:
		return nil, errorf(http.StatusBadRequest, "empty upload: send a photo as the form field %q or as the request body", UploadField)
	}
	return data, nil
}
