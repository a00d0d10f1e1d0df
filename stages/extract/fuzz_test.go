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
	f.Fuzz(func(t *testing.T, image, cls, meta, txt []byte) {
		// every decode mode: float32 views, uint8 views, or the GPU's JPEG
		// with its views' plans (else uint8 views the CPU made)
		for _, mode := range []decodeMode{decodeHost, decodeUpload, decodeNVJPEG} {
			d := decoder{pre: imageproc.CLIPPreprocessor(16), views: 2, out: mode}
			files := map[string][]byte{"jpg": image, "json": meta, "txt": txt}
			if len(cls) > 0 {
				files["cls"] = cls
			}
			s := &sample{raw: &wds.Sample{Key: "k", Files: files}}
			d.decode(s)
			if s.reject != "" {
				continue
			}
			switch {
			case mode == decodeHost:
				if len(s.views) != 2 || len(s.views[0]) != 3*16*16 || len(s.views[1]) != 3*16*16 {
					t.Fatalf("host views %d", len(s.views))
				}
			case s.gpu != nil:
				if len(s.gpu.plans) != 2 || s.gpu.plans[0].Size != 16 || s.gpu.plans[1].Size != 16 || s.fallback != "" {
					t.Fatalf("GPU plans %+v, fallback %q", s.gpu.plans, s.fallback)
				}
			default:
				if len(s.u8) != 2 || len(s.u8[0]) != 3*16*16 || len(s.u8[1]) != 3*16*16 {
					t.Fatalf("uint8 views %d", len(s.u8))
				}
				if mode == decodeNVJPEG && s.fallback == "" {
					t.Fatal("a CPU-decoded image on the GPU path without its reason")
				}
			}
		}
	})
}

// FuzzGPUDecodable: the GPU path's screening reads a header of outside
// bytes. It never panics; what it sends to nvJPEG is a JPEG whose size is
// within the CPU decoder's limits, and when the CPU decodes it too, of the
// size the header gave (the views' plans are made from that size).
func FuzzGPUDecodable(f *testing.F) {
	img := jpegOf(f, 20, 14, 3)
	f.Add(img)
	f.Add(img[:len(img)/2])
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xd9})
	f.Fuzz(func(t *testing.T, data []byte) {
		w, h, why := gpuDecodable(data)
		if why != "" {
			if w != 0 || h != 0 {
				t.Fatalf("refused (%s) with a size %d×%d", why, w, h)
			}
			return
		}
		lim := imageproc.DefaultLimits()
		if w <= 0 || h <= 0 || w > lim.MaxSide || h > lim.MaxSide || w*h > lim.MaxPixels {
			t.Fatalf("accepted a %d×%d image", w, h)
		}
		if m, err := imageproc.DecodeRGB(data); err == nil && (m.W != w || m.H != h) {
			t.Fatalf("header says %d×%d, the CPU decodes %d×%d", w, h, m.W, m.H)
		}
	})
}
