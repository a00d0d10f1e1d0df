package imageproc

import (
	"image"
	"math"
	"math/rand/v2"
)

// ResizeTaps is one axis of a resize as fixed-point taps: output i reads
// N[i] samples from Start[i] with weights K[i*KSize:][:N[i]] (PRECISION_BITS
// = 22), Pillow's precompute_coeffs + normalize_coeffs_8bpc.
type ResizeTaps struct {
	KSize    int
	Start, N []int32
	K        []int32
}

// ResizePlan is the eval transform's resize and crop of a W×H image, laid
// out for another implementation of the same arithmetic (the GPU's): a
// horizontal pass over rows Rows of the image producing the crop window's
// columns, then a vertical pass producing its rows. H is nil when the width
// keeps its size (the pass copies), V nil when the height does. Applying it
// as resizeWindow does gives Resized's bytes exactly (RandomResized's, for
// PlanRandom's plans).
type ResizePlan struct {
	Size int             // the output side S
	X0   int             // first image column the horizontal pass reads (H's Start are relative to it)
	Rows image.Rectangle // image rows Min.Y..Max.Y the horizontal pass produces (X: the source region, unused)
	H    *ResizeTaps     // nil: copy columns X0 .. X0+Size
	V    *ResizeTaps     // Start relative to Rows.Min.Y; nil: copy rows
}

func taps(c *coeffs) *ResizeTaps {
	return &ResizeTaps{KSize: c.ksize, Start: c.start, N: c.n, K: c.k}
}

// Plan returns the resize plan of the eval transform for a w×h image (after
// EXIF orientation, when p applies it, the caller passes the oriented size).
func (p Preprocessor) Plan(w, h int) ResizePlan {
	s := p.Size
	rw, rh := ResizedSize(w, h, p.resizeSize())
	ox, oy := centerOffset(rw, s), centerOffset(rh, s)
	return p.planWindow(image.Rect(0, 0, w, h), rw, rh, image.Rect(ox, oy, ox+s, oy+s))
}

// PlanRandom returns the plan of RandomResized for a w×h image: the crop
// CropParams draws from rng (the same draws RandomResized makes, so the
// same rng state gives the same view), resized to S×S.
func (p Preprocessor) PlanRandom(w, h int, rng *rand.Rand) ResizePlan {
	s := p.Size
	return p.planWindow(CropParams(w, h, rng), s, s, image.Rect(0, 0, s, s))
}

// planWindow is resizeWindow's arithmetic as a plan: the region r of the
// image resized to outW×outH, of which the S×S window win is kept.
func (p Preprocessor) planWindow(r image.Rectangle, outW, outH int, win image.Rectangle) ResizePlan {
	s := p.Size
	plan := ResizePlan{Size: s}
	sy0, sy1 := win.Min.Y, win.Max.Y // region rows the horizontal pass produces
	if r.Dy() != outH {
		cv := p.cache.get(r.Dy(), outH, win.Min.Y, win.Max.Y)
		sy0, sy1 = math.MaxInt, 0
		for i := range s {
			sy0 = min(sy0, int(cv.start[i]))
			sy1 = max(sy1, int(cv.start[i]+cv.n[i]))
		}
		v := taps(cv)
		v.Start = make([]int32, s)
		for i := range s {
			v.Start[i] = cv.start[i] - int32(sy0)
		}
		plan.V = v
	}
	plan.Rows = image.Rect(r.Min.X, r.Min.Y+sy0, r.Max.X, r.Min.Y+sy1)
	plan.X0 = r.Min.X
	if r.Dx() != outW {
		plan.H = taps(p.cache.get(r.Dx(), outW, win.Min.X, win.Max.X))
	} else {
		plan.X0 += win.Min.X
	}
	return plan
}

// NormalizeTable is the lookup Normalize applies: table[c][v] =
// (v/255 − Mean[c]) / Std[c] in float32, in torchvision's order of operations.
func (p Preprocessor) NormalizeTable() [3][256]float32 {
	var lut [3][256]float32
	for c := range 3 {
		for v := range 256 {
			lut[c][v] = (float32(v)/255 - p.Mean[c]) / p.Std[c]
		}
	}
	return lut
}
