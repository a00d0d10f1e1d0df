package imageproc

import (
	"image"
	"image/color"
)

// RGB is an 8-bit RGB image stored row-major, three bytes per pixel (HWC), the
// layout every stage after decoding works on.
type RGB struct {
	W, H int
	// Pix holds H rows of W pixels, R G B interleaved: len(Pix) = H*W*3.
	Pix []uint8
	// Orientation is the EXIF orientation tag (1..8) found in the file, 0 when
	// it has none. Decoding never applies it (PIL does not either); see
	// Oriented and Preprocessor.ApplyEXIF.
	Orientation int
}

var _ image.Image = (*RGB)(nil)

// NewRGB allocates a black w×h image.
func NewRGB(w, h int) *RGB {
	return &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
}

// ColorModel implements image.Image.
func (m *RGB) ColorModel() color.Model { return color.RGBAModel }

// Bounds implements image.Image.
func (m *RGB) Bounds() image.Rectangle { return image.Rect(0, 0, m.W, m.H) }

// At implements image.Image.
func (m *RGB) At(x, y int) color.Color {
	if x < 0 || y < 0 || x >= m.W || y >= m.H {
		return color.RGBA{}
	}
	i := (y*m.W + x) * 3
	return color.RGBA{m.Pix[i], m.Pix[i+1], m.Pix[i+2], 0xff}
}

// ToRGB converts any image to RGB the way PIL's convert("RGB") does for the
// images JPEG and PNG decoders produce: greyscale is replicated into three
// channels, alpha is dropped (not composited), CMYK uses PIL's formula,
// 16-bit samples keep their high byte (PIL does that for 16-bit RGB, but
// clips 16-bit greyscale values to 255 instead; that quirk is not copied),
// and YCbCr is converted with
// libjpeg's fixed-point arithmetic and "fancy" (triangle-filter) chroma
// upsampling, so that the pure-Go JPEG path lands on libjpeg's pixels.
func ToRGB(img image.Image) *RGB {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	switch m := img.(type) {
	case *RGB:
		return m
	case *image.YCbCr:
		if out, ok := ycbcrToRGB(m); ok {
			return out
		}
	case *image.Gray:
		out := NewRGB(w, h)
		for y := 0; y < h; y++ {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			dst := out.Pix[y*w*3:][:w*3]
			for x, v := range src {
				dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
			}
		}
		return out
	case *image.CMYK:
		out := NewRGB(w, h)
		for y := 0; y < h; y++ {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			dst := out.Pix[y*w*3:][:w*3]
			for x := 0; x < w; x++ {
				dst[3*x], dst[3*x+1], dst[3*x+2] = cmykToRGB(src[4*x], src[4*x+1], src[4*x+2], src[4*x+3])
			}
		}
		return out
	case *image.NRGBA:
		return copy4(m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), w, h)
	case *image.RGBA:
		// Decoders hand out RGBA only for opaque images, where premultiplied
		// and straight alpha agree.
		return copy4(m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), w, h)
	case *image.Paletted:
		var lut [256][3]uint8
		for i, c := range m.Palette {
			if i >= 256 {
				break
			}
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			lut[i] = [3]uint8{n.R, n.G, n.B}
		}
		out := NewRGB(w, h)
		for y := 0; y < h; y++ {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			dst := out.Pix[y*w*3:][:w*3]
			for x, v := range src {
				c := lut[v]
				dst[3*x], dst[3*x+1], dst[3*x+2] = c[0], c[1], c[2]
			}
		}
		return out
	}
	// Everything else (16-bit PNGs, YCbCr with an odd origin, ...): through
	// straight-alpha 16-bit colour, keeping the high byte.
	out := NewRGB(w, h)
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
			out.Pix[i], out.Pix[i+1], out.Pix[i+2] = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8)
			i += 3
		}
	}
	return out
}

// copy4 drops the fourth byte of each pixel of a 4-byte-per-pixel buffer.
func copy4(pix []uint8, stride, off, w, h int) *RGB {
	out := NewRGB(w, h)
	for y := 0; y < h; y++ {
		src := pix[off+y*stride:][:4*w]
		dst := out.Pix[y*w*3:][:w*3]
		for x := 0; x < w; x++ {
			dst[3*x], dst[3*x+1], dst[3*x+2] = src[4*x], src[4*x+1], src[4*x+2]
		}
	}
	return out
}

// cmykToRGB is Pillow's cmyk2rgb (Convert.c) on ink values (0 = no ink):
// R = (255-K)·(255-C)/255 with Pillow's rounding MULDIV255.
func cmykToRGB(c, m, y, k uint8) (uint8, uint8, uint8) {
	nk := 255 - int(k)
	f := func(v uint8) uint8 {
		t := int(v)*nk + 128
		r := nk - ((t>>8)+t)>>8
		if r < 0 {
			return 0
		}
		return uint8(r)
	}
	return f(c), f(m), f(y)
}
