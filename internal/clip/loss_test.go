package clip

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/testutil/parity"
)

// refLoss is the symmetric InfoNCE loss in float64, written out directly.
func refLoss(img, text []float64, B, E int, logitScale float64) float64 {
	tn := make([]float64, len(text))
	for b := 0; b < B; b++ {
		var ss float64
		for e := 0; e < E; e++ {
			ss += text[b*E+e] * text[b*E+e]
		}
		n := math.Max(math.Sqrt(ss), 1e-12)
		for e := 0; e < E; e++ {
			tn[b*E+e] = text[b*E+e] / n
		}
	}
	s := math.Exp(logitScale)
	logit := func(i, j int) float64 { // image i, text j
		var d float64
		for e := 0; e < E; e++ {
			d += img[i*E+e] * tn[j*E+e]
		}
		return s * d
	}
	ce := func(row func(k int) float64, target int) float64 {
		mx := math.Inf(-1)
		for k := 0; k < B; k++ {
			mx = math.Max(mx, row(k))
		}
		var sum float64
		for k := 0; k < B; k++ {
			sum += math.Exp(row(k) - mx)
		}
		return mx + math.Log(sum) - row(target)
	}
	var li, lt float64
	for i := 0; i < B; i++ {
		li += ce(func(k int) float64 { return logit(i, k) }, i)
		lt += ce(func(k int) float64 { return logit(k, i) }, i)
	}
	return 0.5 * (li/float64(B) + lt/float64(B))
}

// TestContrastiveLossGradients checks the loss and all three gradients
// against central differences of the float64 reference (h = 1e-5; the
// differences are accurate to ~1e-9, the float32 gradients to ~1e-6, so
// 1e-4 relative per tensor).
func TestContrastiveLossGradients(t *testing.T) {
	be := backend.NewCPU()
	for _, tc := range []struct {
		name       string
		B, E       int
		logitScale float64
	}{
		{"small", 4, 8, math.Log(1 / 0.07)},
		{"cool", 6, 5, 0},
		{"hot", 3, 16, math.Log(100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.B), uint64(tc.E)))
			B, E := tc.B, tc.E
			img, text := make([]float64, B*E), make([]float64, B*E)
			for i := range img {
				img[i] = rng.NormFloat64() * 0.3
				text[i] = rng.NormFloat64()
			}
			f32 := func(x []float64) []float32 {
				out := make([]float32, len(x))
				for i, v := range x {
					out[i] = float32(v)
				}
				return out
			}
			// Round the inputs to float32 so both sides see the same numbers.
			for i := range img {
				img[i], text[i] = float64(float32(img[i])), float64(float32(text[i]))
			}
			imgT, textT := be.FromFloat32(f32(img), B, E), be.FromFloat32(f32(text), B, E)
			dImg, dText := be.Zeros(B, E), be.Zeros(B, E)
			ls := float32(tc.logitScale)
			loss, dScale := ContrastiveLoss(be, imgT, textT, ls, dImg, dText)
			want := refLoss(img, text, B, E, float64(ls))
			if math.Abs(float64(loss)-want) > 1e-5*math.Max(1, want) {
				t.Errorf("loss %.8g, reference %.8g", loss, want)
			}
			const h = 1e-5
			fd := func(x []float64, i int, f func() float64) float64 {
				old := x[i]
				x[i] = old + h
				up := f()
				x[i] = old - h
				down := f()
				x[i] = old
				return (up - down) / (2 * h)
			}
			lossAt := func() float64 { return refLoss(img, text, B, E, float64(ls)) }
			for _, g := range []struct {
				name string
				x    []float64
				got  []float32
			}{{"dImg", img, be.ToFloat32(dImg, nil)}, {"dText", text, be.ToFloat32(dText, nil)}} {
				want := make([]float64, len(g.x))
				for i := range g.x {
					want[i] = fd(g.x, i, lossAt)
				}
				if e := parity.RelErr(g.got, want); !(e <= 1e-4) {
					t.Errorf("%s: relative error %.3g", g.name, e)
				}
			}
			wantScale := (refLoss(img, text, B, E, float64(ls)+h) - refLoss(img, text, B, E, float64(ls)-h)) / (2 * h)
			if e := math.Abs(float64(dScale)-wantScale) / math.Max(math.Abs(wantScale), 1e-3); e > 1e-4 {
				t.Errorf("dLogitScale %.6g, reference %.6g", dScale, wantScale)
			}
			// Gradients accumulate: a second call doubles them.
			before := be.ToFloat32(dText, nil)
			ContrastiveLoss(be, imgT, textT, ls, nil, dText)
			after := be.ToFloat32(dText, nil)
			for i := range after {
				if math.Abs(float64(after[i]-2*before[i])) > 1e-6 {
					t.Fatalf("dText does not accumulate: %g then %g", before[i], after[i])
				}
			}
		})
	}
}
