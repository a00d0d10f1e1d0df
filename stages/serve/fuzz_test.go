package serve

import (
	"bytes"
	"errors"
	"mime/multipart"
	"testing"
)

// FuzzReadUpload: any body under any Content-Type gives the photo's bytes
// (never more than the limit) or an error with a 4xx status; never a panic.
func FuzzReadUpload(f *testing.F) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("note", "x")
	w, _ := mw.CreateFormFile("image", "a.jpg")
	w.Write([]byte("\xff\xd8\xff photo bytes"))
	mw.Close()
	f.Add(mw.FormDataContentType(), buf.Bytes())
	f.Add("image/jpeg", []byte("\xff\xd8\xff"))
	f.Add("multipart/form-data; boundary=b", []byte("--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nxyz\r\n--b--\r\n"))
	f.Add("multipart/form-data", []byte{})
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		const limit = 1 << 10
		data, err := readUpload(contentType, bytes.NewReader(body), limit)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || he.status < 400 || he.status > 499 {
				t.Fatalf("error %v without a 4xx status", err)
			}
			return
		}
		if len(data) == 0 || len(data) > limit {
			t.Fatalf("%d bytes of photo from a %d-byte body, limit %d", len(data), len(body), limit)
		}
	})
}
