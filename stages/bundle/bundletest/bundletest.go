// Package bundletest builds small classifier bundles for the tests of
// bundle, predict and serve: a random clip-tiny image tower (or one of
// another family, Of) and six classes
// whose class embeddings are the tower's own embeddings of six distinct
// photos, so that each photo is classified as its class with a high score
// and a wrong pipeline (decoding, preprocessing, scoring) shows.
package bundletest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/stages/bundle"
)

// Fixture is a bundle on disk with one photo per class.
type Fixture struct {
	Path    string
	Classes []bundle.Class
	// Photos[i] is a JPEG of class i (non-square, so resizing and cropping matter).
	Photos [][]byte
	// LogitScale is the bundle's stored log temperature.
	LogitScale float32
}

// Classes are the fixture's classes: three genera in two families, two
// orders, one class, phylum and kingdom.
func Classes() []bundle.Class {
	tx := func(order, family, genus, species string) bundle.Taxonomy {
		return bundle.Taxonomy{Kingdom: "Animalia", Phylum: "Chordata", Class: "Aves", Order: order,
			Family: family, Genus: genus, Species: species}
	}
	return []bundle.Class{
		{ID: 10, Name: "Junco hyemalis", CommonName: "Dark-eyed Junco", Taxonomy: tx("Passeriformes", "Passerellidae", "Junco", "Junco hyemalis")},
		{ID: 11, Name: "Junco phaeonotus", CommonName: "Yellow-eyed Junco", Taxonomy: tx("Passeriformes", "Passerellidae", "Junco", "Junco phaeonotus")},
		{ID: 12, Name: "Melozone crissalis", CommonName: "California Towhee", Taxonomy: tx("Passeriformes", "Passerellidae", "Melozone", "Melozone crissalis")},
		{ID: 13, Name: "Melozone fusca", CommonName: "Canyon Towhee", Taxonomy: tx("Passeriformes", "Passerellidae", "Melozone", "Melozone fusca")},
		{ID: 14, Name: "Picoides pubescens", CommonName: "Downy Woodpecker", Taxonomy: tx("Piciformes", "Picidae", "Picoides", "Picoides pubescens")},
		{ID: 15, Name: "Picoides villosus", CommonName: "Hairy Woodpecker", Taxonomy: tx("Piciformes", "Picidae", "Picoides", "Picoides villosus")},
	}
}

// Photo draws class i's photo: a w×h image whose colours and stripes depend on i.
func Photo(i, w, h int) *imageproc.RGB {
	m := imageproc.NewRGB(w, h)
	hue := float64(i) / 6
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := (y*w + x) * 3
			stripe := (x*(i+1)/9+y/(i+3))%2 == 0
			for c := range 3 {
				v := 0.5 + 0.45*math.Sin(2*math.Pi*(hue+float64(c)/3))
				if stripe {
					v = 1 - v
				}
				m.Pix[p+c] = uint8(255 * v)
			}
		}
	}
	return m
}

// Tiny writes a bundle into dir and returns it with its photos.
func Tiny(tb testing.TB, dir string) Fixture {
	tb.Helper()
	return Of(tb, dir, "clip-tiny", "")
}

// Of is Tiny with a random tower (seed 3) of any family the registry knows:
// model is a built-in name, pool its pooling ("" = the default).
func Of(tb testing.TB, dir, model, pool string) Fixture {
	tb.Helper()
	t, err := tower.Load(backend.NewCPU(), tower.Spec{Model: model, Weights: "random:3", Pool: pool})
	if err != nil {
		tb.Fatal(err)
	}
	tw := bundle.TowerOf(t)
	defer tw.Free()
	f := Fixture{Path: filepath.Join(dir, "tiny.bundle.safetensors"), Classes: Classes(), LogitScale: float32(math.Log(100))}
	pre := tw.Preprocessor()
	var emb []float32
	for i := range f.Classes {
		jpg, err := imageproc.EncodeJPEG(Photo(i, 56, 40), 95)
		if err != nil {
			tb.Fatal(err)
		}
		f.Photos = append(f.Photos, jpg)
		img, err := bundle.DecodePhoto(jpg, bundle.FieldLimits())
		if err != nil {
			tb.Fatal(err)
		}
		e := tw.Encode(pre.Transform(img, nil), 1)
		var ss float64
		for _, v := range e {
			ss += float64(v) * float64(v)
		}
		for j := range e {
			e[j] /= float32(math.Sqrt(ss))
		}
		emb = append(emb, e...)
	}
	meta := bundle.Meta{Classes: f.Classes, Templates: []string{"{caption}"}}
	if err := bundle.Write(f.Path, t.Save(), emb, f.LogitScale, meta); err != nil {
		tb.Fatal(err)
	}
	return f
}

// EXIF is a TIFF-format EXIF block (little-endian) whose IFD0 holds only
// the orientation tag.
func EXIF(orientation int) []byte {
	b := []byte("II*\x00\x08\x00\x00\x00")
	b = append(b, 1, 0)                         // one IFD entry
	b = append(b, 0x12, 0x01, 3, 0, 1, 0, 0, 0) // tag 0x0112, SHORT, count 1
	b = append(b, byte(orientation), 0, 0, 0)   // value, padding
	return append(b, 0, 0, 0, 0)                // no next IFD
}

// RotatedPNG stores img turned 90° counter-clockwise, with EXIF orientation
// 6 ("rotate 90° clockwise to display") when tagged: a viewer that honours
// EXIF shows img itself, one that does not shows it sideways.
func RotatedPNG(tb testing.TB, img *imageproc.RGB, tagged bool) []byte {
	tb.Helper()
	W, H := img.W, img.H
	rot := image.NewRGBA(image.Rect(0, 0, H, W))
	for b := 0; b < W; b++ {
		for a := 0; a < H; a++ {
			// stored(a,b) = upright(W-1-b, a)
			s := (a*W + (W - 1 - b)) * 3
			rot.Set(a, b, color.RGBA{img.Pix[s], img.Pix[s+1], img.Pix[s+2], 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, rot); err != nil {
		tb.Fatal(err)
	}
	data := buf.Bytes()
	if !tagged {
		return data
	}
	// eXIf goes right after IHDR (8-byte signature + 25-byte IHDR chunk).
	exif := EXIF(6)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(exif)))
	chunk = append(chunk, "eXIf"...)
	chunk = append(chunk, exif...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	out := append([]byte{}, data[:33]...)
	out = append(out, chunk...)
	return append(out, data[33:]...)
}

// SolidWebP is a lossless WebP of one colour, w×h, in a few dozen bytes
// whatever its size (each prefix code has a single symbol, so pixels take
// no bits): a photo for tests, and at 16000×16000 a decompression bomb.
// With orientation > 0 it is an extended WebP (VP8X) with an EXIF chunk.
func SolidWebP(w, h int, rgb [3]uint8, orientation int) []byte {
	var bits bitWriter
	bits.put(0x2f, 8)
	bits.put(uint32(w-1), 14)
	bits.put(uint32(h-1), 14)
	bits.put(0, 1) // no alpha
	bits.put(0, 3) // version 0
	bits.put(0, 1) // no transform
	bits.put(0, 1) // no colour cache
	bits.put(0, 1) // no meta prefix codes
	// Five simple prefix codes of one 8-bit symbol each: green, red, blue, alpha, distance.
	for _, sym := range []uint8{rgb[1], rgb[0], rgb[2], 255, 0} {
		bits.put(1, 1) // simple code
		bits.put(0, 1) // one symbol
		bits.put(1, 1) // 8-bit symbol
		bits.put(uint32(sym), 8)
	}
	vp8l := riffChunk("VP8L", bits.bytes())
	body := []byte("WEBP")
	if orientation > 0 {
		x := []byte{0x08, 0, 0, 0} // EXIF flag
		x = append(x, byte(w-1), byte((w-1)>>8), byte((w-1)>>16), byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
		body = append(body, riffChunk("VP8X", x)...)
		body = append(body, vp8l...)
		body = append(body, riffChunk("EXIF", EXIF(orientation))...)
	} else {
		body = append(body, vp8l...)
	}
	out := []byte("RIFF")
	out = binary.LittleEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...)
}

func riffChunk(tag string, data []byte) []byte {
	out := append([]byte(tag), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(data)))
	out = append(out, data...)
	if len(data)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

// bitWriter packs bits least-significant first, as VP8L reads them.
type bitWriter struct {
	buf  []byte
	nbit int
}

func (b *bitWriter) put(v uint32, n int) {
	for i := 0; i < n; i++ {
		if b.nbit%8 == 0 {
			b.buf = append(b.buf, 0)
		}
		if v>>i&1 == 1 {
			b.buf[len(b.buf)-1] |= 1 << (b.nbit % 8)
		}
		b.nbit++
	}
}

func (b *bitWriter) bytes() []byte { return b.buf }

// JPEGBomb is a valid small JPEG whose frame header claims w×h pixels: a
// decoder that allocates from the header before checking it would take
// w·h·3 bytes for a file of a few hundred.
func JPEGBomb(tb testing.TB, w, h int) []byte {
	tb.Helper()
	data, err := imageproc.EncodeJPEG(Photo(0, 16, 16), 80)
	if err != nil {
		tb.Fatal(err)
	}
	for p := 2; p+9 < len(data); {
		if data[p] != 0xff {
			tb.Fatal("bundletest: JPEG markers out of step")
		}
		marker, n := data[p+1], int(binary.BigEndian.Uint16(data[p+2:]))
		if marker == 0xc0 || marker == 0xc2 { // SOF0/SOF2: length, precision, height, width
			binary.BigEndian.PutUint16(data[p+5:], uint16(h))
			binary.BigEndian.PutUint16(data[p+7:], uint16(w))
			return data
		}
		p += 2 + n
	}
	tb.Fatal("bundletest: no SOF marker")
	return nil
}
