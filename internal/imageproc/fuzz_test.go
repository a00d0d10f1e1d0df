package imageproc

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"testing"

	"github.com/litcache/litcache/internal/imageproc/jpegtest"
)

// FuzzDecode feeds arbitrary bytes to both decoders and the preprocessing:
// no panic, a consistent image or an error, and memory bounded by the limits
// (checked on the header before any pixel buffer exists).
func FuzzDecode(f *testing.F) {
	var b bytes.Buffer
	jpeg.Encode(&b, TestPattern(9, 7, 1), &jpeg.Options{Quality: 50})
	f.Add(b.Bytes())
	b.Reset()
	jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 5, 3)), nil)
	f.Add(b.Bytes())
	b.Reset()
	png.Encode(&b, TestPattern(4, 3, 1))
	f.Add(b.Bytes())
	b.Reset()
	png.Encode(&b, image.NewPaletted(image.Rect(0, 0, 3, 3), color.Palette{color.Black, color.White}))
	f.Add(b.Bytes())
	src := TestPattern(10, 6, 2)
	y, cb, cr := yccPlanes(src)
	f.Add(jpegtest.Image{W: 10, H: 6, Adobe: -1, Comps: []jpegtest.Comp{{H: 2, V: 1, Plane: y}, {H: 1, V: 1, Plane: cb}, {H: 1, V: 1, Plane: cr}}}.Encode())
	f.Add(jpegtest.Image{W: 10, H: 6, Adobe: 0, Comps: []jpegtest.Comp{{H: 1, V: 1, Plane: y}, {H: 1, V: 1, Plane: cb}, {H: 1, V: 1, Plane: cr}, {H: 1, V: 1, Plane: y}}}.Encode())
	var e bytes.Buffer
	jpeg.Encode(&e, src, nil)
	f.Add(withEXIF(nil, e.Bytes(), binary.BigEndian, 6))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xd8, 0xff})
	f.Add([]byte("\x89PNG\r\n\x1a\n"))

	lim := Limits{MaxSide: 4096, MaxPixels: 1 << 20}
	decs := []Decoder{{Limits: lim, PureGo: true}, {Limits: lim}}
	p := CLIPPreprocessor(16)
	p.ApplyEXIF = true
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range decs {
			m, err := d.DecodeRGB(data)
			if err != nil {
				if m != nil {
					t.Fatal("image and error")
				}
				continue
			}
			if m.W <= 0 || m.H <= 0 || m.W > lim.MaxSide || m.H > lim.MaxSide || len(m.Pix) != m.W*m.H*3 {
				t.Fatalf("inconsistent image %d×%d, %d bytes", m.W, m.H, len(m.Pix))
			}
			if m.W*m.H > 1<<16 {
				continue // keep iterations fast
			}
			if r := p.Resized(m); r.W != 16 || r.H != 16 || len(r.Pix) != 16*16*3 {
				t.Fatalf("resized to %d×%d", r.W, r.H)
			}
			p.TransformRandom(m, rand.New(rand.NewPCG(uint64(len(data)), 1)), nil)
		}
	})
}

// FuzzOrientation runs the EXIF readers (JPEG APP1, PNG eXIf, TIFF IFD0) on
// arbitrary bytes: no panic, a result in 0..8.
func FuzzOrientation(f *testing.F) {
	var b bytes.Buffer
	jpeg.Encode(&b, TestPattern(4, 4, 1), nil)
	f.Add(withEXIF(nil, b.Bytes(), binary.LittleEndian, 6))
	f.Add(withEXIF(nil, b.Bytes(), binary.BigEndian, 3))
	f.Add(exifTIFF(binary.LittleEndian, 8))
	var p bytes.Buffer
	png.Encode(&p, TestPattern(2, 2, 1))
	f.Add(pngWithEXIF(nil, p.Bytes(), 5))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xe1, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, o := range []int{jpegOrientation(data), pngOrientation(data), tiffOrientation(data)} {
			if o < 0 || o > 8 {
				t.Fatalf("orientation %d", o)
			}
		}
	})
}
