// Package jpegtest writes small baseline JPEG files for tests: any number of
// components, any sampling factors, an optional Adobe APP14 marker. Go's
// image/jpeg can only write 4:2:0 YCbCr and greyscale; the decoder and
// extract tests need CMYK, 4:2:2, 4:4:0, 4:1:1 and 4:4:4 files too.
package jpegtest

import (
	"bytes"
	"math"
)

// A small baseline JPEG encoder for tests: any number of components, any
// sampling factors, quantisation table of ones (nearly lossless), the K.3
// luminance Huffman tables for every component, optional Adobe APP14 marker.
// image/jpeg can only write 4:2:0 YCbCr and greyscale; this makes the CMYK,
// 4:2:2, 4:4:0, 4:1:1 and 4:4:4 files the decoder tests need.

// Comp is one component: sampling factors H, V and a full-resolution W×H
// plane, subsampled by point sampling.
type Comp struct {
	H, V  int
	Plane []uint8 // full resolution, W×H; subsampled by point sampling
}

// Image describes the file to write.
type Image struct {
	W, H  int
	Comps []Comp
	// Adobe: -1 no APP14 marker, else its transform byte (0 CMYK/RGB, 1 YCbCr, 2 YCCK).
	Adobe int
}

var (
	dcBits = [16]byte{0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0}
	dcVals = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	acBits = [16]byte{0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125}
	acVals = []byte{
		0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
		0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
		0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
		0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
		0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
		0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
		0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
		0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
		0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
		0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
		0xf9, 0xfa,
	}
	unzig = [64]int{
		0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
		12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
		35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
		58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
	}
)

type huffCode struct {
	code uint32
	n    uint
}

func huffCodes(bits [16]byte, vals []byte) map[byte]huffCode {
	m := map[byte]huffCode{}
	code, k := uint32(0), 0
	for l := 1; l <= 16; l++ {
		for i := 0; i < int(bits[l-1]); i++ {
			m[vals[k]] = huffCode{code, uint(l)}
			code++
			k++
		}
		code <<= 1
	}
	return m
}

type bitWriter struct {
	out   bytes.Buffer
	acc   uint32
	nbits uint
}

func (b *bitWriter) put(code uint32, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		b.acc = b.acc<<1 | (code>>uint(i))&1
		b.nbits++
		if b.nbits == 8 {
			c := byte(b.acc)
			b.out.WriteByte(c)
			if c == 0xff {
				b.out.WriteByte(0)
			}
			b.acc, b.nbits = 0, 0
		}
	}
}

func (b *bitWriter) flush() {
	for b.nbits != 0 {
		b.put(1, 1)
	}
}

func magnitude(v int) (uint, uint32) {
	a := v
	if a < 0 {
		a = -a
	}
	s := uint(0)
	for a > 0 {
		s++
		a >>= 1
	}
	if v < 0 {
		return s, uint32(v+(1<<s)-1) & (1<<s - 1)
	}
	return s, uint32(v)
}

// Encode returns the JPEG file (quantisation table of ones: nearly lossless).
func (e Image) Encode() []byte {
	var out bytes.Buffer
	w16 := func(v int) { out.WriteByte(byte(v >> 8)); out.WriteByte(byte(v)) }
	out.Write([]byte{0xff, 0xd8})
	if e.Adobe >= 0 {
		out.Write([]byte{0xff, 0xee, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, byte(e.Adobe)})
	}
	out.Write([]byte{0xff, 0xdb, 0, 67, 0})
	out.Write(bytes.Repeat([]byte{1}, 64))
	nc := len(e.Comps)
	out.Write([]byte{0xff, 0xc0})
	w16(8 + 3*nc)
	out.WriteByte(8)
	w16(e.H)
	w16(e.W)
	out.WriteByte(byte(nc))
	hmax, vmax := 1, 1
	for i, c := range e.Comps {
		out.Write([]byte{byte(i + 1), byte(c.H<<4 | c.V), 0})
		hmax, vmax = max(hmax, c.H), max(vmax, c.V)
	}
	out.Write([]byte{0xff, 0xc4})
	w16(2 + 17 + len(dcVals) + 17 + len(acVals))
	out.WriteByte(0x00)
	out.Write(dcBits[:])
	out.Write(dcVals)
	out.WriteByte(0x10)
	out.Write(acBits[:])
	out.Write(acVals)
	out.Write([]byte{0xff, 0xda})
	w16(6 + 2*nc)
	out.WriteByte(byte(nc))
	for i := range e.Comps {
		out.Write([]byte{byte(i + 1), 0})
	}
	out.Write([]byte{0, 63, 0})

	dc, ac := huffCodes(dcBits, dcVals), huffCodes(acBits, acVals)
	var bw bitWriter
	pred := make([]int, nc)
	mcusX := (e.W + 8*hmax - 1) / (8 * hmax)
	mcusY := (e.H + 8*vmax - 1) / (8 * vmax)
	if nc == 1 { // non-interleaved: one block per MCU
		mcusX, mcusY = (e.W+7)/8, (e.H+7)/8
		e.Comps[0].H, e.Comps[0].V, hmax, vmax = 1, 1, 1, 1
	}
	var blk [64]float64
	for my := 0; my < mcusY; my++ {
		for mx := 0; mx < mcusX; mx++ {
			for ci, c := range e.Comps {
				for by := 0; by < c.V; by++ {
					for bx := 0; bx < c.H; bx++ {
						x0, y0 := (mx*c.H+bx)*8, (my*c.V+by)*8
						for y := 0; y < 8; y++ {
							for x := 0; x < 8; x++ {
								sx := min((x0+x)*hmax/c.H, e.W-1)
								sy := min((y0+y)*vmax/c.V, e.H-1)
								blk[y*8+x] = float64(c.Plane[sy*e.W+sx]) - 128
							}
						}
						coef := fdct(&blk)
						d := coef[0] - pred[ci]
						pred[ci] = coef[0]
						s, bits := magnitude(d)
						hc := dc[byte(s)]
						bw.put(hc.code, hc.n)
						bw.put(bits, s)
						run := 0
						for k := 1; k < 64; k++ {
							v := coef[unzig[k]]
							if v == 0 {
								run++
								continue
							}
							for run > 15 {
								hc := ac[0xf0]
								bw.put(hc.code, hc.n)
								run -= 16
							}
							s, bits := magnitude(v)
							hc := ac[byte(run<<4)|byte(s)]
							bw.put(hc.code, hc.n)
							bw.put(bits, s)
							run = 0
						}
						if run > 0 {
							hc := ac[0x00]
							bw.put(hc.code, hc.n)
						}
					}
				}
			}
		}
	}
	bw.flush()
	out.Write(bw.out.Bytes())
	out.Write([]byte{0xff, 0xd9})
	return out.Bytes()
}

// fdct is the textbook 8×8 forward DCT, rounded (quantisation by 1).
func fdct(b *[64]float64) [64]int {
	var out [64]int
	for v := 0; v < 8; v++ {
		for u := 0; u < 8; u++ {
			s := 0.0
			for y := 0; y < 8; y++ {
				for x := 0; x < 8; x++ {
					s += b[y*8+x] * math.Cos(float64(2*x+1)*float64(u)*math.Pi/16) * math.Cos(float64(2*y+1)*float64(v)*math.Pi/16)
				}
			}
			cu, cv := 1.0, 1.0
			if u == 0 {
				cu = 1 / math.Sqrt2
			}
			if v == 0 {
				cv = 1 / math.Sqrt2
			}
			out[v*8+u] = int(math.Round(s * cu * cv / 4))
		}
	}
	return out
}
