package imageproc

import (
	"image"
	"math"
	"sync"
)

// Pillow's resampling (libImaging/Resample.c) for 8-bit images, reproduced
// operation for operation so that the result matches PIL's Image.resize with
// BICUBIC to the level:
//   - per output sample, taps over [center-support, center+support) where the
//     support is the filter's (2 for bicubic) times the downscale factor
//     (antialiasing), weights normalised to sum 1 in float64;
//   - weights converted to fixed point with PRECISION_BITS = 32-8-2 = 22,
//     rounded away from zero;
//   - a horizontal pass, then a vertical one, each accumulating in int32 from
//     a bias of 1<<21 and clipping to uint8 between the passes;
//   - a pass is skipped when its axis keeps its size.
// Only the output window that survives the crop is computed (each output
// sample depends only on its own taps, so this changes nothing).

const precisionBits = 32 - 8 - 2

// bicubic is Pillow's bicubic_filter with a = -0.5; support 2.
func bicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return float64(float64((a+2)*x-(a+3))*x*x) + 1
	}
	if x < 2 {
		return float64(float64(float64(x-5)*x+8)*x-4) * a
	}
	return 0
}

// coeffs holds one axis's taps for a run of outputs: the i-th reads n[i]
// input samples from start[i] with weights k[i*ksize:][:n[i]] (fixed point).
type coeffs struct {
	ksize    int
	start, n []int32
	k        []int32
}

// precomputeCoeffs is Pillow's precompute_coeffs + normalize_coeffs_8bpc for
// the box [0, inSize) of an axis resized to outSize, for the outputs o0..o1
// only (index i holds output o0+i): each output's taps depend on nothing
// else, and a thin image's long side can have millions of outputs of which
// the crop keeps 224.
func precomputeCoeffs(inSize, outSize, o0, o1 int) *coeffs {
	const support0 = 2.0 // bicubic
	scale := float64(inSize) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := support0 * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	nOut := o1 - o0
	c := &coeffs{ksize: ksize, start: make([]int32, nOut), n: make([]int32, nOut), k: make([]int32, nOut*ksize)}
	w := make([]float64, ksize)
	ss := 1.0 / filterscale
	for xx := o0; xx < o1; xx++ {
		center := (float64(xx) + 0.5) * scale
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			v := bicubic((float64(x+xmin) - center + 0.5) * ss)
			w[x] = v
			ww += v
		}
		i := xx - o0
		k := c.k[i*ksize:][:ksize]
		for x := 0; x < xmax; x++ {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				k[x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				k[x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		c.start[i] = int32(xmin)
		c.n[i] = int32(max(xmax, 0))
	}
	return c
}

// coeffCache remembers coefficients per (in size, out size, output window);
// the eval transform sees few distinct sizes. Safe for concurrent use; nil computes
// every time.
type coeffCache struct {
	mu      sync.Mutex
	m       map[[4]int]*coeffs
	scratch sync.Pool // *scratch
}

const coeffCacheMax = 512

func newCoeffCache() *coeffCache { return &coeffCache{m: map[[4]int]*coeffs{}} }

func (cc *coeffCache) get(in, out, o0, o1 int) *coeffs {
	if cc == nil {
		return precomputeCoeffs(in, out, o0, o1)
	}
	key := [4]int{in, out, o0, o1}
	cc.mu.Lock()
	c, ok := cc.m[key]
	cc.mu.Unlock()
	if ok {
		return c
	}
	c = precomputeCoeffs(in, out, o0, o1)
	cc.mu.Lock()
	if len(cc.m) >= coeffCacheMax {
		clear(cc.m)
	}
	cc.m[key] = c
	cc.mu.Unlock()
	return c
}

// getScratch returns reusable resize buffers (fresh ones for a nil cache).
func (cc *coeffCache) getScratch() *scratch {
	if cc != nil {
		if sc, ok := cc.scratch.Get().(*scratch); ok {
			return sc
		}
	}
	return &scratch{}
}

func (cc *coeffCache) putScratch(sc *scratch) {
	if cc != nil {
		cc.scratch.Put(sc)
	}
}

func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// resizeWindow resizes the region r of src to outW×outH (as PIL's
// img.crop(r).resize((outW, outH), BICUBIC)) and returns only the window win
// of that result.
// With a scratch, the result's pixels live in the scratch's buffers (valid
// until its next use); with nil, they are freshly allocated.
func resizeWindow(src *RGB, r image.Rectangle, outW, outH int, win image.Rectangle, cc *coeffCache, sc *scratch) *RGB {
	if sc == nil {
		sc = &scratch{}
	}
	rw, rh := r.Dx(), r.Dy()
	ww, wh := win.Dx(), win.Dy()
	needH, needV := rw != outW, rh != outH

	// Source rows (relative to r) that the vertical pass reads.
	var cv *coeffs
	sy0, sy1 := win.Min.Y, win.Max.Y
	if needV {
		cv = cc.get(rh, outH, win.Min.Y, win.Max.Y)
		sy0, sy1 = math.MaxInt, 0
		for i := range wh {
			sy0 = min(sy0, int(cv.start[i]))
			sy1 = max(sy1, int(cv.start[i]+cv.n[i]))
		}
	}

	// Horizontal pass: rows sy0..sy1 of the region, output columns of win.
	rowLen := ww * 3
	sc.tmp = grow(sc.tmp, (sy1-sy0)*rowLen)
	tmp := sc.tmp
	if needH {
		horizontal(tmp, src, r, sy0, sy1, cc.get(rw, outW, win.Min.X, win.Max.X), ww)
	} else {
		for y := sy0; y < sy1; y++ {
			off := ((r.Min.Y+y)*src.W + r.Min.X + win.Min.X) * 3
			copy(tmp[(y-sy0)*rowLen:][:rowLen], src.Pix[off:off+rowLen])
		}
	}
	if !needV {
		return &RGB{W: ww, H: wh, Pix: tmp}
	}
	sc.out = grow(sc.out, wh*rowLen)
	sc.acc = grow(sc.acc, rowLen)
	vertical(sc.out, tmp, sc.acc, rowLen, sy0, cv, wh)
	return &RGB{W: ww, H: wh, Pix: sc.out}
}

// scratch holds one resize's intermediate buffers, for reuse through
// coeffCache's pool.
type scratch struct {
	tmp, out []uint8
	acc      []int32
}

// grow returns b resized to n, reallocating only when it lacks capacity;
// the contents are not cleared (every caller overwrites them).
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// horizontal is ImagingResampleHorizontal_8bpc on rows y0..y1 of region r,
// computing the nOut output columns c describes into dst (rows of nOut·3
// bytes).
func horizontal(dst []uint8, src *RGB, r image.Rectangle, y0, y1 int, c *coeffs, nOut int) {
	const bias = 1 << (precisionBits - 1)
	rowLen := nOut * 3
	srcLen := r.Dx() * 3
	y := y0
	// Two rows per sweep share each output's coefficients and loop overhead.
	for ; y+2 <= y1; y += 2 {
		srowA := src.Pix[((r.Min.Y+y)*src.W+r.Min.X)*3:][:srcLen]
		srowB := src.Pix[((r.Min.Y+y+1)*src.W+r.Min.X)*3:][:srcLen]
		drowA := dst[(y-y0)*rowLen:][:rowLen]
		drowB := dst[(y+1-y0)*rowLen:][:rowLen]
		for xx := range nOut {
			n := int(c.n[xx])
			k := c.k[xx*c.ksize:][:n]
			off := int(c.start[xx]) * 3
			p := srowA[off:][:n*3]
			q := srowB[off:][:n*3]
			a0, a1, a2 := int32(bias), int32(bias), int32(bias)
			b0, b1, b2 := int32(bias), int32(bias), int32(bias)
			for _, kv := range k {
				if len(p) < 3 || len(q) < 3 { // never true; drops bounds checks
					break
				}
				a0 += int32(p[0]) * kv
				a1 += int32(p[1]) * kv
				a2 += int32(p[2]) * kv
				b0 += int32(q[0]) * kv
				b1 += int32(q[1]) * kv
				b2 += int32(q[2]) * kv
				p, q = p[3:], q[3:]
			}
			o := xx * 3
			d := drowA[o:][:3]
			d[0], d[1], d[2] = clip8(a0), clip8(a1), clip8(a2)
			e := drowB[o:][:3]
			e[0], e[1], e[2] = clip8(b0), clip8(b1), clip8(b2)
		}
	}
	for ; y < y1; y++ {
		srow := src.Pix[((r.Min.Y+y)*src.W+r.Min.X)*3:][:srcLen]
		drow := dst[(y-y0)*rowLen:][:rowLen]
		for xx := range nOut {
			n := int(c.n[xx])
			k := c.k[xx*c.ksize:][:n]
			p := srow[int(c.start[xx])*3:][:n*3]
			s0, s1, s2 := int32(bias), int32(bias), int32(bias)
			for _, kv := range k {
				if len(p) < 3 { // never true; drops bounds checks
					break
				}
				s0 += int32(p[0]) * kv
				s1 += int32(p[1]) * kv
				s2 += int32(p[2]) * kv
				p = p[3:]
			}
			d := drow[xx*3:][:3]
			d[0], d[1], d[2] = clip8(s0), clip8(s1), clip8(s2)
		}
	}
}

// vertical is ImagingResampleVertical_8bpc: the nOut output rows c
// describes, from tmp, whose first row is source row tmpRow0; rows are rowLen
// bytes.
func vertical(dst, tmp []uint8, acc []int32, rowLen, tmpRow0 int, c *coeffs, nOut int) {
	const bias = 1 << (precisionBits - 1)
	acc = acc[:rowLen]
	for yy := range nOut {
		for i := range acc {
			acc[i] = bias
		}
		n := int(c.n[yy])
		k := c.k[yy*c.ksize:][:n]
		s := int(c.start[yy]) - tmpRow0
		t := 0
		// Four taps per sweep over the row: a quarter of the accumulator
		// traffic. Integer sums, so the grouping changes nothing.
		for ; t+4 <= n; t += 4 {
			r0 := tmp[(s+t)*rowLen:][:rowLen]
			r1 := tmp[(s+t+1)*rowLen:][:rowLen]
			r2 := tmp[(s+t+2)*rowLen:][:rowLen]
			r3 := tmp[(s+t+3)*rowLen:][:rowLen]
			k0, k1, k2, k3 := k[t], k[t+1], k[t+2], k[t+3]
			a := acc[:rowLen]
			for i := range a {
				a[i] += int32(r0[i])*k0 + int32(r1[i])*k1 + int32(r2[i])*k2 + int32(r3[i])*k3
			}
		}
		for ; t < n; t++ {
			row := tmp[(s+t)*rowLen:][:rowLen]
			a := acc[:len(row)]
			kv := k[t]
			for i, v := range row {
				a[i] += int32(v) * kv
			}
		}
		d := dst[yy*rowLen:][:rowLen]
		for i, v := range acc {
			d[i] = clip8(v)
		}
	}
}
