package synth

import (
	"hash/fnv"
	"image"
	"math"
	"math/rand"

	"github.com/litcache/litcache/internal/inat"
)

// look is what a species' photos share: every field is derived from one
// rank, so that images of related species resemble each other.
type look struct {
	bg        [3]float64 // background, by class (hue) and kingdom (lightness)
	shape     int        // by order
	points    int        // by family: star points / polygon sides
	aspect    float64    // by family
	fill      [3]float64 // by genus
	second    [3]float64 // by species
	texture   int        // by species
	frequency float64    // by species
}

func hash(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// unit maps a hash to [0,1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

func hsl(h, s, l float64) [3]float64 {
	c := (1 - math.Abs(2*l-1)) * s
	hp := math.Mod(h*6, 6)
	x := c * (1 - math.Abs(math.Mod(hp, 2)-1))
	var r, g, b float64
	switch int(hp) {
	case 0:
		r, g, b = c, x, 0
	case 1:
		r, g, b = x, c, 0
	case 2:
		r, g, b = 0, c, x
	case 3:
		r, g, b = 0, x, c
	case 4:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	m := l - c/2
	return [3]float64{255 * (r + m), 255 * (g + m), 255 * (b + m)}
}

func lookOf(c *inat.Category) look {
	hk := hash(c.Kingdom)
	hc := hash(c.Kingdom, c.Class)
	ho := hash(c.Kingdom, c.Class, c.Order)
	hf := hash(c.Kingdom, c.Class, c.Order, c.Family)
	hg := hash(c.Genus)
	hs := hash(c.Name)
	return look{
		bg:        hsl(unit(hc), 0.35+0.3*unit(hc>>7), 0.22+0.25*unit(hk)),
		shape:     int(ho % 6),
		points:    3 + int(hf%5),
		aspect:    0.5 + 0.5*unit(hf>>9),
		fill:      hsl(unit(hg), 0.6+0.4*unit(hg>>5), 0.45+0.2*unit(hg>>13)),
		second:    hsl(unit(hs), 0.7, 0.25+0.5*unit(hs>>17)),
		texture:   int(hs>>23) % 5,
		frequency: 4 + 10*unit(hs>>29),
	}
}

// inside tells whether local coordinates (u,v) ∈ [-1,1]² fall in the shape.
func (l *look) inside(u, v float64) bool {
	if u*u+v*v > 1.0001 && l.shape != 3 {
		return false
	}
	k := float64(l.points)
	switch l.shape {
	case 0: // ellipse
		return (u/l.aspect)*(u/l.aspect)+v*v <= 1
	case 1: // star
		r, th := math.Sqrt(u*u+v*v), math.Atan2(v, u)
		return r <= 0.55+0.4*math.Cos(k*th)
	case 2: // regular polygon
		r, th := math.Sqrt(u*u+v*v), math.Atan2(v, u)
		seg := 2 * math.Pi / k
		a := math.Mod(th+2*math.Pi, seg) - seg/2
		return r*math.Cos(a) <= math.Cos(math.Pi/k)
	case 3: // rectangle
		return math.Abs(u) <= l.aspect && math.Abs(v) <= 1
	case 4: // ring
		e := math.Sqrt(u/l.aspect*u/l.aspect + v*v)
		return e <= 1 && e >= 0.55
	default: // cross
		w := 0.25 + 0.15*l.aspect
		return (math.Abs(u) <= w && math.Abs(v) <= 1) || (math.Abs(u) <= 1 && math.Abs(v) <= w)
	}
}

// pattern tells whether the species' second colour shows at (u,v).
func (l *look) pattern(u, v float64) bool {
	f := l.frequency
	switch l.texture {
	case 0: // stripes
		return math.Sin(f*u) > 0.2
	case 1: // spots
		return math.Sin(f*u)*math.Sin(f*v) > 0.45
	case 2: // checks
		return math.Sin(f*u)*math.Sin(f*v) > 0
	case 3: // rings
		return math.Sin(f*math.Sqrt(u*u+v*v)) > 0.3
	default: // plain, with a darker edge band
		return math.Sqrt(u*u+v*v) > 0.8
	}
}

// draw renders one photo of a species: w×h, the subject placed, scaled and
// rotated at random, a background gradient and pixel noise.
func draw(l *look, w, h int, rng *rand.Rand) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	s := float64(min(w, h)) / 2
	cx := float64(w)/2 + (rng.Float64()-0.5)*0.3*s
	cy := float64(h)/2 + (rng.Float64()-0.5)*0.3*s
	scale := s * (0.55 + 0.3*rng.Float64())
	rot := rng.Float64() * 2 * math.Pi
	cos, sin := math.Cos(rot), math.Sin(rot)
	gx, gy := rng.Float64()-0.5, rng.Float64()-0.5 // background gradient direction
	bright := 0.9 + 0.2*rng.Float64()
	noise := (6 + 6*rng.Float64()) * 1.7 // uniform noise with about this standard deviation
	state := rng.Uint32() | 1            // xorshift32: per-pixel noise without rand's cost
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := float64(x)-cx, float64(y)-cy
			u := (cos*dx + sin*dy) / scale
			v := (-sin*dx + cos*dy) / scale
			var c [3]float64
			if l.inside(u, v) {
				c = l.fill
				if l.pattern(u, v) {
					c = l.second
				}
			} else {
				g := 1 + 0.4*(gx*float64(x)/float64(w)+gy*float64(y)/float64(h))
				c = [3]float64{l.bg[0] * g, l.bg[1] * g, l.bg[2] * g}
			}
			state ^= state << 13
			state ^= state >> 17
			state ^= state << 5
			n := (float64(state)/(1<<31) - 1) * noise
			o := y*img.Stride + 4*x
			for i := 0; i < 3; i++ {
				img.Pix[o+i] = clamp8(c[i]*bright + n)
			}
			img.Pix[o+3] = 255
		}
	}
	return img
}

func clamp8(v float64) uint8 {
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v + 0.5)
}
