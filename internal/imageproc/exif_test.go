package imageproc

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image/jpeg"
	"image/png"
	"testing"
)

// exifTIFF is a minimal TIFF block holding only the orientation tag.
func exifTIFF(order binary.ByteOrder, orientation uint16) []byte {
	var b bytes.Buffer
	if order == binary.LittleEndian {
		b.WriteString("II")
	} else {
		b.WriteString("MM")
	}
	binary.Write(&b, order, uint16(42))
	binary.Write(&b, order, uint32(8))
	binary.Write(&b, order, uint16(1))      // one entry
	binary.Write(&b, order, uint16(0x0112)) // orientation
	binary.Write(&b, order, uint16(3))      // SHORT
	binary.Write(&b, order, uint32(1))
	binary.Write(&b, order, orientation)
	binary.Write(&b, order, uint16(0))
	binary.Write(&b, order, uint32(0)) // no next IFD
	return b.Bytes()
}

func withEXIF(t *testing.T, jpg []byte, order binary.ByteOrder, o uint16) []byte {
	payload := append([]byte("Exif\x00\x00"), exifTIFF(order, o)...)
	seg := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

func pngWithEXIF(t *testing.T, pngData []byte, o uint16) []byte {
	payload := exifTIFF(binary.BigEndian, o)
	var chunk bytes.Buffer
	binary.Write(&chunk, binary.BigEndian, uint32(len(payload)))
	body := append([]byte("eXIf"), payload...)
	chunk.Write(body)
	binary.Write(&chunk, binary.BigEndian, crc32.ChecksumIEEE(body))
	// after the IHDR chunk: 8 signature + 25 IHDR
	out := append([]byte{}, pngData[:33]...)
	out = append(out, chunk.Bytes()...)
	return append(out, pngData[33:]...)
}

func TestEXIFOrientationRead(t *testing.T) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, TestPattern(8, 6, 1), nil); err != nil {
		t.Fatal(err)
	}
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for o := uint16(1); o <= 8; o++ {
			m, err := DecodeRGB(withEXIF(t, buf.Bytes(), order, o))
			if err != nil {
				t.Fatal(err)
			}
			if m.Orientation != int(o) {
				t.Errorf("%v orientation %d read as %d", order, o, m.Orientation)
			}
			if m.W != 8 || m.H != 6 {
				t.Errorf("decoding applied the orientation: %d×%d", m.W, m.H)
			}
		}
	}
	m, err := DecodeRGB(buf.Bytes())
	if err != nil || m.Orientation != 0 {
		t.Errorf("no EXIF: orientation %d, err %v", m.Orientation, err)
	}
	var pbuf bytes.Buffer
	if err := png.Encode(&pbuf, TestPattern(4, 3, 1)); err != nil {
		t.Fatal(err)
	}
	pm, err := DecodeRGB(pngWithEXIF(t, pbuf.Bytes(), 6))
	if err != nil || pm.Orientation != 6 {
		t.Errorf("PNG eXIf: orientation %d, err %v", pm.Orientation, err)
	}
}

func TestOriented(t *testing.T) {
	// 3×2 image with pixel value = index; PIL's exif_transpose results.
	src := NewRGB(3, 2)
	for i := 0; i < 6; i++ {
		src.Pix[3*i] = uint8(i)
	}
	// Source:  0 1 2
	//          3 4 5
	for _, tc := range []struct {
		o    int
		w, h int
		want []uint8
	}{
		{1, 3, 2, []uint8{0, 1, 2, 3, 4, 5}},
		{2, 3, 2, []uint8{2, 1, 0, 5, 4, 3}},
		{3, 3, 2, []uint8{5, 4, 3, 2, 1, 0}},
		{4, 3, 2, []uint8{3, 4, 5, 0, 1, 2}},
		{5, 2, 3, []uint8{0, 3, 1, 4, 2, 5}},
		{6, 2, 3, []uint8{3, 0, 4, 1, 5, 2}},
		{7, 2, 3, []uint8{5, 2, 4, 1, 3, 0}},
		{8, 2, 3, []uint8{2, 5, 1, 4, 0, 3}},
	} {
		m := *src
		m.Orientation = tc.o
		got := m.Oriented()
		if got.W != tc.w || got.H != tc.h {
			t.Fatalf("orientation %d: %d×%d, want %d×%d", tc.o, got.W, got.H, tc.w, tc.h)
		}
		for i, v := range tc.want {
			if got.Pix[3*i] != v {
				t.Fatalf("orientation %d: %v, want %v", tc.o, red(got), tc.want)
			}
		}
	}
	// The preprocessor applies it only when asked.
	m := TestPattern(30, 20, 4)
	m.Orientation = 6
	p := CLIPPreprocessor(8)
	plain := p.Resized(m)
	p.ApplyEXIF = true
	turned := p.Resized(m)
	if string(plain.Pix) == string(turned.Pix) {
		t.Error("ApplyEXIF changed nothing")
	}
	if string(turned.Pix) != string(CLIPPreprocessor(8).Resized(m.Oriented()).Pix) {
		t.Error("ApplyEXIF is not Oriented then Resized")
	}
}

func red(m *RGB) []uint8 {
	out := make([]uint8, m.W*m.H)
	for i := range out {
		out[i] = m.Pix[3*i]
	}
	return out
}

func TestTIFFOrientationRejectsJunk(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("II"), []byte("XX*\x00\x08\x00\x00\x00"), []byte("II*\x00\xff\xff\xff\x7f"), exifTIFF(binary.LittleEndian, 9)} {
		if o := tiffOrientation(b); o != 0 {
			t.Errorf("tiffOrientation(% x) = %d", b, o)
		}
	}
}
