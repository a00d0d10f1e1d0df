package imageproc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/imageproc/jpegtest"
)

// decoders lists the pure-Go decoder, and libjpeg-turbo's when installed.
func decoders(t *testing.T) map[string]Decoder {
	m := map[string]Decoder{"go": {Limits: DefaultLimits(), PureGo: true}}
	if _, ok := TurboJPEG(); ok {
		m["turbo"] = DefaultDecoder()
	} else {
		t.Log("libjpeg-turbo absent: pure-Go decoder only")
	}
	return m
}

// ycc converts RGB planes to JPEG YCbCr planes (JFIF, rounded).
func yccPlanes(m *RGB) (y, cb, cr []uint8) {
	n := m.W * m.H
	y, cb, cr = make([]uint8, n), make([]uint8, n), make([]uint8, n)
	for i := 0; i < n; i++ {
		yy, b, r := color.RGBToYCbCr(m.Pix[3*i], m.Pix[3*i+1], m.Pix[3*i+2])
		y[i], cb[i], cr[i] = yy, b, r
	}
	return
}

// TestSubsamplingMatchesTurbo checks the pure-Go path's libjpeg emulation
// (fancy upsampling, fixed-point colour conversion) against libjpeg-turbo on
// every chroma layout, with odd sizes so the edge cases run. Tolerance: the
// IDCTs differ (image/jpeg's vs libjpeg's islow) by ±1 in a few samples,
// which colour conversion can turn into 2–3 levels; a wrong upsampling
// filter shows as a mean well above 0.3 on this picture.
func TestSubsamplingMatchesTurbo(t *testing.T) {
	if _, ok := TurboJPEG(); !ok {
		t.Skip("libjpeg-turbo not installed: nothing to compare with")
	}
	src := TestPattern(37, 29, 5)
	y, cb, cr := yccPlanes(src)
	for _, tc := range []struct {
		name string
		h, v int
	}{{"444", 1, 1}, {"422", 2, 1}, {"420", 2, 2}, {"440", 1, 2}, {"411", 4, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			data := jpegtest.Image{W: src.W, H: src.H, Adobe: -1, Comps: []jpegtest.Comp{{H: tc.h, V: tc.v, Plane: y}, {H: 1, V: 1, Plane: cb}, {H: 1, V: 1, Plane: cr}}}.Encode()
			g, err := Decoder{PureGo: true}.DecodeRGB(data)
			if err != nil {
				t.Fatal(err)
			}
			tj, err := Decoder{}.DecodeRGB(data)
			if err != nil {
				t.Fatal(err)
			}
			mean, mx := diff(g.Pix, tj.Pix)
			t.Logf("go vs turbo: mean %.4f max %d", mean, mx)
			if mean > 0.3 || mx > 4 {
				t.Errorf("go vs turbo: mean %.4f max %d", mean, mx)
			}
			// And both near the source (quantisation by 1, 4:4:4 only).
			if tc.name == "444" {
				if mean, mx := diff(g.Pix, src.Pix); mean > 1 || mx > 4 {
					t.Errorf("go vs source: mean %.4f max %d", mean, mx)
				}
			}
		})
	}
}

func TestGreyscaleJPEG(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 19, 13))
	for i := range g.Pix {
		g.Pix[i] = uint8(i * 3)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, g, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	for name, d := range decoders(t) {
		t.Run(name, func(t *testing.T) {
			m, err := d.DecodeRGB(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if m.W != 19 || m.H != 13 {
				t.Fatalf("size %d×%d", m.W, m.H)
			}
			for i := 0; i < m.W*m.H; i++ {
				r, gg, b := m.Pix[3*i], m.Pix[3*i+1], m.Pix[3*i+2]
				if r != gg || gg != b {
					t.Fatalf("pixel %d: %d %d %d, want three equal channels", i, r, gg, b)
				}
				if d := int(r) - int(g.Pix[i]); d < -3 || d > 3 {
					t.Fatalf("pixel %d: %d, source %d", i, r, g.Pix[i])
				}
			}
		})
	}
}

// TestCMYKJPEG: Adobe-inverted CMYK (as Photoshop writes it), and the same
// file without the Adobe marker (PIL and libjpeg still read it as CMYK),
// come out as Pillow's cmyk2rgb of the ink values.
func TestCMYKJPEG(t *testing.T) {
	const w, h = 16, 12
	var planes [4][]uint8
	ink := func(c, x, y int) uint8 { return uint8((x*13 + y*7 + c*50) % 256) }
	for c := range planes {
		planes[c] = make([]uint8, w*h)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				planes[c][y*w+x] = 255 - ink(c, x, y) // stored inverted
			}
		}
	}
	comps := []jpegtest.Comp{{H: 1, V: 1, Plane: planes[0]}, {H: 1, V: 1, Plane: planes[1]}, {H: 1, V: 1, Plane: planes[2]}, {H: 1, V: 1, Plane: planes[3]}}
	for _, adobe := range []int{0, -1} {
		data := jpegtest.Image{W: w, H: h, Comps: comps, Adobe: adobe}.Encode()
		for name, d := range decoders(t) {
			t.Run(name, func(t *testing.T) {
				m, err := d.DecodeRGB(data)
				if err != nil {
					t.Fatalf("adobe=%d: %v", adobe, err)
				}
				var worst int
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						r, g, b := cmykToRGB(ink(0, x, y), ink(1, x, y), ink(2, x, y), ink(3, x, y))
						i := (y*w + x) * 3
						for k, want := range []uint8{r, g, b} {
							worst = max(worst, abs(int(m.Pix[i+k])-int(want)))
						}
					}
				}
				// Quantisation by 1 leaves ±1 per channel; the product of
				// two inks can double it.
				if worst > 3 {
					t.Errorf("adobe=%d: max diff %d from Pillow's cmyk2rgb", adobe, worst)
				}
			})
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestCMYKToRGBIsPillows(t *testing.T) {
	for _, tc := range []struct{ c, m, y, k, r, g, b uint8 }{
		{0, 0, 0, 0, 255, 255, 255},
		{255, 255, 255, 0, 0, 0, 0},
		{0, 0, 0, 255, 0, 0, 0},
		{128, 64, 0, 0, 127, 191, 255},
		{100, 50, 25, 100, 94, 125, 140},
	} {
		r, g, b := cmykToRGB(tc.c, tc.m, tc.y, tc.k)
		if r != tc.r || g != tc.g || b != tc.b {
			t.Errorf("cmyk %v: got %d %d %d want %d %d %d", tc, r, g, b, tc.r, tc.g, tc.b)
		}
	}
}

func TestPNG(t *testing.T) {
	const w, h = 5, 4
	nrgba := image.NewNRGBA(image.Rect(0, 0, w, h))
	gray := image.NewGray(image.Rect(0, 0, w, h))
	gray16 := image.NewGray16(image.Rect(0, 0, w, h))
	rgba64 := image.NewRGBA64(image.Rect(0, 0, w, h))
	pal := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.NRGBA{10, 20, 30, 255}, color.NRGBA{200, 100, 50, 40}})
	want := map[string]func(x, y int) [3]uint8{}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := uint8(x*40 + y*10)
			nrgba.SetNRGBA(x, y, color.NRGBA{v, 255 - v, v / 2, uint8(x * 60)}) // alpha dropped, not composited
			gray.SetGray(x, y, color.Gray{v})
			gray16.SetGray16(x, y, color.Gray16{uint16(v)<<8 | 0x7f})
			rgba64.SetRGBA64(x, y, color.RGBA64{uint16(v) << 8, 0xffff, 0x1234, 0xffff})
			pal.SetColorIndex(x, y, uint8((x+y)%2))
		}
	}
	want["nrgba"] = func(x, y int) [3]uint8 { v := uint8(x*40 + y*10); return [3]uint8{v, 255 - v, v / 2} }
	want["gray"] = func(x, y int) [3]uint8 { v := uint8(x*40 + y*10); return [3]uint8{v, v, v} }
	want["gray16"] = want["gray"]
	want["rgba64"] = func(x, y int) [3]uint8 { v := uint8(x*40 + y*10); return [3]uint8{v, 0xff, 0x12} }
	want["paletted"] = func(x, y int) [3]uint8 {
		if (x+y)%2 == 0 {
			return [3]uint8{10, 20, 30}
		}
		return [3]uint8{200, 100, 50}
	}
	for name, img := range map[string]image.Image{"nrgba": nrgba, "gray": gray, "gray16": gray16, "rgba64": rgba64, "paletted": pal} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				t.Fatal(err)
			}
			m, err := DecodeRGB(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					i := (y*w + x) * 3
					got := [3]uint8{m.Pix[i], m.Pix[i+1], m.Pix[i+2]}
					if got != want[name](x, y) {
						t.Fatalf("(%d,%d): %v want %v", x, y, got, want[name](x, y))
					}
				}
			}
		})
	}
}

func TestDecodeFileErrors(t *testing.T) {
	dir := t.TempDir()
	var pngBuf, jpgBuf bytes.Buffer
	if err := png.Encode(&pngBuf, TestPattern(6, 5, 1)); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpgBuf, TestPattern(32, 24, 1), nil); err != nil {
		t.Fatal(err)
	}
	full := jpgBuf.Bytes()
	for _, tc := range []struct {
		name string
		data []byte
		want error // nil: decodes
	}{
		{"png-named.jpg", pngBuf.Bytes(), nil},
		{"extraneous-bytes.jpg", append(append(append([]byte{}, full[:len(full)-2]...), 0x12, 0x34, 0x56), 0xff, 0xd9), nil},
		{"jpeg-named.png", full, nil},
		{"empty.jpg", nil, ErrEmpty},
		{"text.jpg", []byte("hello, this is not an image"), ErrFormat},
		{"gif.jpg", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), ErrFormat},
		{"soi-only.jpg", []byte{0xff, 0xd8, 0xff}, ErrTruncated},
		{"half.jpg", full[:len(full)/2], ErrTruncated},
		{"no-eoi.jpg", full[:len(full)-2], ErrTruncated},
		{"half.png", pngBuf.Bytes()[:pngBuf.Len()/2], ErrTruncated},
		{"huge.png", hugePNG(t, 30000, 30000), ErrTooLarge},
		{"huge.jpg", hugeJPEG(t, full, 20001, 10), ErrTooLarge},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		for name, d := range decoders(t) {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				m, err := d.DecodeFile(path)
				if tc.want == nil {
					if err != nil {
						t.Fatalf("decode: %v", err)
					}
					if m.W == 0 || m.H == 0 || len(m.Pix) != m.W*m.H*3 {
						t.Fatalf("bad image %d×%d len %d", m.W, m.H, len(m.Pix))
					}
					return
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("error %v, want %v", err, tc.want)
				}
				if !strings.Contains(err.Error(), tc.name) {
					t.Errorf("error %q does not name the file", err)
				}
			})
		}
	}
	if _, err := DecodeFile(filepath.Join(dir, "absent.jpg")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "absent.jpg") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := DecodeRGB([]byte("GIF89a....")); err == nil || !strings.Contains(err.Error(), "GIF") {
		t.Errorf("GIF error %v does not say GIF", err)
	}
}

// hugePNG is a PNG header (signature + IHDR) announcing w×h.
func hugePNG(t *testing.T, w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 2 // 8-bit RGB
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(ihdr)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	b.WriteString("\x00\x00\x00\x00IEND\xaeB`\x82")
	return b.Bytes()
}

// hugeJPEG rewrites the SOF0 size of a valid JPEG.
func hugeJPEG(t *testing.T, data []byte, w, h int) []byte {
	out := append([]byte(nil), data...)
	i := bytes.Index(out, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0")
	}
	binary.BigEndian.PutUint16(out[i+5:], uint16(h))
	binary.BigEndian.PutUint16(out[i+7:], uint16(w))
	return out
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		data []byte
		want string
	}{
		{[]byte{0xff, 0xd8, 0xff, 0xe0}, "jpeg"},
		{[]byte("\x89PNG\r\n\x1a\n...."), "png"},
		{[]byte("GIF89a"), ""},
		{nil, ""},
		{[]byte{0xff, 0xd8}, ""},
	} {
		if got := Format(tc.data); got != tc.want {
			t.Errorf("Format(% x) = %q, want %q", tc.data, got, tc.want)
		}
	}
}

func TestDecodeReturnsImage(t *testing.T) {
	data, err := EncodeJPEG(TestPattern(10, 8, 3), 95)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	m := img.(*RGB)
	if img.Bounds() != image.Rect(0, 0, 10, 8) {
		t.Fatalf("bounds %v", img.Bounds())
	}
	r, g, b, a := img.At(3, 2).RGBA()
	i := (2*10 + 3) * 3
	if uint8(r>>8) != m.Pix[i] || uint8(g>>8) != m.Pix[i+1] || uint8(b>>8) != m.Pix[i+2] || a != 0xffff {
		t.Error("At disagrees with Pix")
	}
	// Round trip through ToRGB of an image.Image keeps the pixels.
	if back := ToRGB(image.Image(m)); back != m {
		t.Error("ToRGB(*RGB) should return it unchanged")
	}
}

// TestConcurrentDecode shares the libjpeg-turbo handle pool between
// goroutines (run with -race), truncated files among good ones.
func TestConcurrentDecode(t *testing.T) {
	data, err := EncodeJPEG(TestPattern(40, 30, 7), 90)
	if err != nil {
		t.Fatal(err)
	}
	want, err := DecodeRGB(data)
	if err != nil {
		t.Fatal(err)
	}
	p := CLIPPreprocessor(16)
	ref := p.Transform(want, nil)
	big, err := EncodeJPEG(TestPattern(64, 48, 1), 75)
	if err != nil {
		t.Fatal(err)
	}
	truncated := big[:len(big)-2]
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 20; i++ {
				// TurboJPEG's messages are thread-local: a truncation
				// warning must be recognised whatever thread reads it.
				if _, err := DecodeRGB(truncated); !errors.Is(err, ErrTruncated) {
					errs <- fmt.Errorf("truncated JPEG: error %v", err)
					return
				}
				m, err := DecodeRGB(data)
				if err != nil {
					errs <- err
					return
				}
				if string(m.Pix) != string(want.Pix) {
					errs <- errors.New("pixels differ between goroutines")
					return
				}
				x := p.Transform(m, nil)
				for j := range x {
					if x[j] != ref[j] {
						errs <- errors.New("tensors differ between goroutines")
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestTurboHandleAfterFailure: a TurboJPEG handle that failed on a broken
// file must not decode the next image differently (a failed header read
// leaves libjpeg's state broken; such handles are destroyed, not pooled).
func TestTurboHandleAfterFailure(t *testing.T) {
	if _, ok := TurboJPEG(); !ok {
		t.Skip("libjpeg-turbo not installed")
	}
	good, err := EncodeJPEG(TestPattern(40, 30, 7), 90)
	if err != nil {
		t.Fatal(err)
	}
	other, err := EncodeJPEG(TestPattern(64, 48, 1), 75)
	if err != nil {
		t.Fatal(err)
	}
	d := Decoder{}
	ref, err := d.DecodeRGB(good)
	if err != nil {
		t.Fatal(err)
	}
	for i, bad := range [][]byte{other[:len(other)/2], other[:len(other)-2], {0xff, 0xd8, 0xff}, hugeJPEG(t, other, 20001, 10)} {
		if m, err := d.DecodeRGB(bad); err == nil {
			t.Fatalf("broken JPEG %d decoded (%d×%d)", i, m.W, m.H)
		}
		m, err := d.DecodeRGB(good)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Pix) != string(ref.Pix) {
			t.Fatal("after a failure, the next image decoded differently (handle reused in a broken state?)")
		}
	}
}

// TestRGBJPEG: a 3-component JPEG with an Adobe marker of transform 0 holds
// RGB, not YCbCr (libjpeg, PIL and image/jpeg agree).
func TestRGBJPEG(t *testing.T) {
	src := TestPattern(20, 12, 3)
	planes := [3][]uint8{}
	for c := range planes {
		planes[c] = make([]uint8, src.W*src.H)
		for i := range planes[c] {
			planes[c][i] = src.Pix[3*i+c]
		}
	}
	data := jpegtest.Image{W: src.W, H: src.H, Adobe: 0, Comps: []jpegtest.Comp{{H: 1, V: 1, Plane: planes[0]}, {H: 1, V: 1, Plane: planes[1]}, {H: 1, V: 1, Plane: planes[2]}}}.Encode()
	for name, d := range decoders(t) {
		t.Run(name, func(t *testing.T) {
			m, err := d.DecodeRGB(data)
			if err != nil {
				t.Fatal(err)
			}
			if mean, mx := diff(m.Pix, src.Pix); mean > 0.5 || mx > 2 {
				t.Errorf("RGB JPEG: mean %.3f max %d from the source", mean, mx)
			}
		})
	}
}
