package imageproc

import (
	"bytes"
	"encoding/binary"
)

// EXIF orientation (tag 0x0112 in IFD0). PIL does not apply it when opening
// an image and OpenCLIP does not call exif_transpose, so decoding only records
// it; Oriented applies it the way PIL's ImageOps.exif_transpose does.

// jpegOrientation scans the markers before the first scan for an APP1 "Exif"
// segment and returns its orientation, 0 when absent or unreadable.
func jpegOrientation(data []byte) int {
	if len(data) < 4 || data[0] != 0xff || data[1] != 0xd8 {
		return 0
	}
	p := 2
	for p+4 <= len(data) {
		if data[p] != 0xff {
			return 0
		}
		marker := data[p+1]
		if marker == 0xff { // fill byte
			p++
			continue
		}
		if marker == 0xda || marker == 0xd9 { // SOS, EOI: no more headers
			return 0
		}
		if marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7) { // no length
			p += 2
			continue
		}
		n := int(binary.BigEndian.Uint16(data[p+2:]))
		if n < 2 || p+2+n > len(data) {
			return 0
		}
		seg := data[p+4 : p+2+n]
		if marker == 0xe1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return tiffOrientation(seg[6:])
		}
		p += 2 + n
	}
	return 0
}

// pngOrientation reads the orientation from a PNG eXIf chunk before the
// image data, 0 when absent.
func pngOrientation(data []byte) int {
	p := 8
	for p+12 <= len(data) {
		n := int(binary.BigEndian.Uint32(data[p:]))
		typ := string(data[p+4 : p+8])
		if n < 0 || n > len(data)-p-12 {
			return 0
		}
		switch typ {
		case "eXIf":
			return tiffOrientation(data[p+8 : p+8+n])
		case "IDAT", "IEND":
			return 0
		}
		p += 12 + n
	}
	return 0
}

// tiffOrientation parses a TIFF header and IFD0 for tag 0x0112.
func tiffOrientation(b []byte) int {
	if len(b) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(b[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(b[2:]) != 42 {
		return 0
	}
	off := int64(bo.Uint32(b[4:]))
	if off < 8 || off+2 > int64(len(b)) {
		return 0
	}
	n := int64(bo.Uint16(b[off:]))
	for i := int64(0); i < n; i++ {
		e := off + 2 + 12*i
		if e+12 > int64(len(b)) {
			return 0
		}
		if bo.Uint16(b[e:]) != 0x0112 {
			continue
		}
		typ, count := bo.Uint16(b[e+2:]), bo.Uint32(b[e+4:])
		if typ != 3 || count < 1 { // SHORT
			return 0
		}
		v := int(bo.Uint16(b[e+8:]))
		if v < 1 || v > 8 {
			return 0
		}
		return v
	}
	return 0
}

// Oriented returns the image turned upright according to its Orientation
// (PIL's exif_transpose: 2 mirror, 3 rotate 180°, 4 flip, 5 transpose,
// 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° counter-clockwise).
// Orientation 0 or 1 returns m itself; the result has Orientation 1.
func (m *RGB) Oriented() *RGB {
	o := m.Orientation
	if o < 2 || o > 8 {
		return m
	}
	w, h := m.W, m.H
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := NewRGB(ow, oh)
	out.Orientation = 1
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = w-1-x, y
			case 3:
				sx, sy = w-1-x, h-1-y
			case 4:
				sx, sy = x, h-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, h-1-x
			case 7:
				sx, sy = w-1-y, h-1-x
			case 8:
				sx, sy = w-1-y, x
			}
			si, di := (sy*w+sx)*3, (y*ow+x)*3
			out.Pix[di], out.Pix[di+1], out.Pix[di+2] = m.Pix[si], m.Pix[si+1], m.Pix[si+2]
		}
	}
	return out
}
