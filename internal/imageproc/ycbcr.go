package imageproc

import "image"

// YCbCr → RGB as libjpeg(-turbo) does it, so that Go's image/jpeg output (which
// keeps the chroma planes subsampled) becomes the pixels PIL sees:
//   - chroma upsampling with libjpeg's "fancy" triangle filter (jdsample.c:
//     h2v1, h2v2 and h1v2, 3/4·nearer + 1/4·further sample with its alternating
//     rounding biases; edges replicated; plain replication for 4:1:1, 4:1:0
//     and for chroma planes at most 2 samples wide, as libjpeg decides);
//   - colour conversion with jdcolor.c's 16-bit fixed-point tables.
// The remaining difference to libjpeg is Go's IDCT (±1 level here and there).

const yccScaleBits = 16

// yccTables are jdcolor.c's build_ycc_rgb_table, indexed by the Cb or Cr
// byte, and its range_limit clamp: limit[(v+rangeOff)&1023] = clamp(v, 0, 255)
// for v in [-rangeOff, 1023-rangeOff].
type yccTables struct {
	crR, cbB, crG, cbG [256]int32
	limit              [1024]uint8
}

const rangeOff = 384

var ycc = buildYCCTables()

func buildYCCTables() *yccTables {
	fix := func(x float64) int64 { return int64(x*(1<<yccScaleBits) + 0.5) }
	const half = 1 << (yccScaleBits - 1)
	t := &yccTables{}
	for i := 0; i < 256; i++ {
		x := int64(i - 128)
		t.crR[i] = int32((fix(1.40200)*x + half) >> yccScaleBits)
		t.cbB[i] = int32((fix(1.77200)*x + half) >> yccScaleBits)
		t.crG[i] = int32(-fix(0.71414) * x)
		t.cbG[i] = int32(-fix(0.34414)*x + half)
	}
	for i := range t.limit {
		t.limit[i] = clampU8(int32(i - rangeOff))
	}
	return t
}

func clampU8(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// yccRow converts one row: y, cb, cr hold at least len(dst)/3 samples each.
func yccRow(dst, y, cb, cr []uint8) {
	t := ycc
	n := len(dst) / 3
	y, cb, cr = y[:n], cb[:n], cr[:n]
	for x := 0; x < n; x++ {
		yy := int32(y[x])
		b, r := cb[x], cr[x]
		d := dst[3*x : 3*x+3]
		d[0] = t.limit[(yy+t.crR[r]+rangeOff)&1023]
		d[1] = t.limit[(yy+(t.cbG[b]+t.crG[r])>>yccScaleBits+rangeOff)&1023]
		d[2] = t.limit[(yy+t.cbB[b]+rangeOff)&1023]
	}
}

// ycbcrToRGB converts a decoded JPEG's YCbCr image. It reports false for
// layouts it does not handle (an origin other than 0,0), which the caller
// converts through image.Image instead.
func ycbcrToRGB(m *image.YCbCr) (*RGB, bool) {
	if m.Rect.Min != (image.Point{}) {
		return nil, false
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	var hs, vs int
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
		hs, vs = 1, 1
	case image.YCbCrSubsampleRatio422:
		hs, vs = 2, 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		hs, vs = 1, 2
	case image.YCbCrSubsampleRatio411:
		hs, vs = 4, 1
	case image.YCbCrSubsampleRatio410:
		hs, vs = 4, 2
	default:
		return nil, false
	}
	// libjpeg's downsampled_width/height: ceil(image size / factor).
	cw, ch := (w+hs-1)/hs, (h+vs-1)/vs
	if len(m.Y) < (h-1)*m.YStride+w || len(m.Cb) < (ch-1)*m.CStride+cw || len(m.Cr) < (ch-1)*m.CStride+cw {
		return nil, false
	}
	out := NewRGB(w, h)
	upW := cw * hs
	cbRow := make([]uint8, upW)
	crRow := make([]uint8, upW)
	colsum := make([]int32, cw)
	fancy := (hs == 2 && cw > 2) || (hs == 1 && vs == 2)
	for y := 0; y < h; y++ {
		yRow := m.Y[y*m.YStride:][:w]
		for p, plane := range [2][]uint8{m.Cb, m.Cr} {
			dst := cbRow
			if p == 1 {
				dst = crRow
			}
			r := y / vs
			near := plane[r*m.CStride:][:cw]
			switch {
			case hs == 1 && vs == 1:
				copy(dst, near)
			case fancy && hs == 2 && vs == 1:
				h2v1Fancy(dst, near)
			case fancy && vs == 2:
				// Row above for the upper output row of a pair, row below for
				// the lower one; the image edges replicate the edge row.
				fr, bias := r-1, int32(1)
				if y%2 == 1 {
					fr, bias = r+1, 2
				}
				fr = max(0, min(fr, ch-1))
				far := plane[fr*m.CStride:][:cw]
				for c := range colsum {
					colsum[c] = 3*int32(near[c]) + int32(far[c])
				}
				if hs == 1 {
					for c, s := range colsum {
						dst[c] = uint8((s + bias) >> 2)
					}
				} else {
					h2v2Fancy(dst, colsum)
				}
			default:
				for x := range dst {
					dst[x] = near[x/hs]
				}
			}
		}
		yccRow(out.Pix[y*w*3:][:w*3], yRow, cbRow, crRow)
	}
	return out, true
}

// h2v1Fancy is jdsample.c's h2v1_fancy_upsample for one row (len(in) > 2).
func h2v1Fancy(out, in []uint8) {
	n := len(in)
	v := int32(in[0])
	out[0] = in[0]
	out[1] = uint8((v*3 + int32(in[1]) + 2) >> 2)
	for c := 1; c < n-1; c++ {
		v := int32(in[c]) * 3
		out[2*c] = uint8((v + int32(in[c-1]) + 1) >> 2)
		out[2*c+1] = uint8((v + int32(in[c+1]) + 2) >> 2)
	}
	v = int32(in[n-1])
	out[2*n-2] = uint8((v*3 + int32(in[n-2]) + 1) >> 2)
	out[2*n-1] = in[n-1]
}

// h2v2Fancy is the horizontal half of jdsample.c's h2v2_fancy_upsample, on
// column sums 3·nearer row + further row (len(colsum) > 2).
func h2v2Fancy(out []uint8, colsum []int32) {
	n := len(colsum)
	out[0] = uint8((colsum[0]*4 + 8) >> 4)
	out[1] = uint8((colsum[0]*3 + colsum[1] + 7) >> 4)
	for c := 1; c < n-1; c++ {
		out[2*c] = uint8((colsum[c]*3 + colsum[c-1] + 8) >> 4)
		out[2*c+1] = uint8((colsum[c]*3 + colsum[c+1] + 7) >> 4)
	}
	out[2*n-2] = uint8((colsum[n-1]*3 + colsum[n-2] + 8) >> 4)
	out[2*n-1] = uint8((colsum[n-1]*4 + 7) >> 4)
}
