package extract

import (
	"testing"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/wds"
)

// FuzzDecodeSample: a sample's members are outside bytes (image, .cls,
// .json, .txt); the decoder must either reject the sample with a reason or
// give every view a full (3,S,S) tensor — never panic.
func FuzzDecodeSample(f *testing.F) {
	img := jpegOf(f, 20, 14, 3)
	f.Add(img, []byte("12"), []byte(`{"category_id": 5}`), []byte("a photo"))
	f.Add(img, []byte(""), []byte(`{"category_id": "x"}`), []byte(""))
	f.Add(img[:len(img)/2], []byte("-3"), []byte(`{}`), []byte("\xff"))
	f.Add([]byte{}, []byte("99999999999"), []byte(`null`), []byte(""))
	f.Add([]byte("\x89PNG\r\n\x1a\n"), []byte(" 7 \n"), []byte(`[`), []byte("x"))
	d := decoder{pre: imageproc.CLIPPreprocessor(16), views: 2}
	f.Fuzz(func(t *testing.T, image, cls, meta, txt []byte) {
		files := map[string][]byte{"jpg": image, "json": meta, "txt": txt}
		if len(cls) > 0 {
			files["cls"] = cls
		}
		s := &sample{raw: &wds.Sample{Key: "k", Files: files}}
		d.decode(s)
		if s.reject != "" {
			return
		}
		if len(s.views) != 2 {
			t.Fatalf("%d views", len(s.views))
		}
		for _, p := range s.views {
			if len(p) != 3*16*16 {
				t.Fatalf("view of %d values", len(p))
			}
		}
	})
}
