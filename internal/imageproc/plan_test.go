package imageproc

import (
	"math/rand/v2"
	"testing"
)

// applyPlan computes the resize from a plan alone, as a GPU would.
func applyPlan(img *RGB, pl ResizePlan) *RGB {
	S := pl.Size
	rows := pl.Rows.Dy()
	tmp := make([]uint8, rows*S*3)
	for y := range rows {
		for x := range S {
			for c := range 3 {
				if pl.H == nil {
					tmp[(y*S+x)*3+c] = img.Pix[((pl.Rows.Min.Y+y)*img.W+pl.X0+x)*3+c]
					continue
				}
				acc := int32(1 << (precisionBits - 1))
				for t := range int(pl.H.N[x]) {
					acc += int32(img.Pix[((pl.Rows.Min.Y+y)*img.W+pl.X0+int(pl.H.Start[x])+t)*3+c]) * pl.H.K[x*pl.H.KSize+t]
				}
				tmp[(y*S+x)*3+c] = clip8(acc)
			}
		}
	}
	if pl.V == nil {
		return &RGB{W: S, H: S, Pix: tmp}
	}
	out := make([]uint8, S*S*3)
	for y := range S {
		for i := range S * 3 {
			acc := int32(1 << (precisionBits - 1))
			for t := range int(pl.V.N[y]) {
				acc += int32(tmp[(int(pl.V.Start[y])+t)*S*3+i]) * pl.V.K[y*pl.V.KSize+t]
			}
			out[y*S*3+i] = clip8(acc)
		}
	}
	return &RGB{W: S, H: S, Pix: out}
}

// TestPlanReproducesResized: the plan, applied by a second implementation of
// the passes, gives Resized's bytes exactly, for wide, tall, square, exact
// and upscaled sizes (the GPU's resize kernels apply the same plan), with
// OpenCLIP's transform and torchvision's ImageNet one (resize 256, crop 224:
// DINOv2's and Swin's, whose resize is not the crop).
func TestPlanReproducesResized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range []Preprocessor{CLIPPreprocessor(224), ImageNetPreprocessor(256, 224)} {
		for _, sz := range [][2]int{{500, 375}, {375, 500}, {224, 224}, {224, 300}, {300, 224}, {100, 80}, {1000, 230}, {224, 225}, {256, 300}} {
			img := NewRGB(sz[0], sz[1])
			for i := range img.Pix {
				img.Pix[i] = uint8(rng.IntN(256))
			}
			want := p.Resized(img)
			got := applyPlan(img, p.Plan(sz[0], sz[1]))
			for i := range want.Pix {
				if got.Pix[i] != want.Pix[i] {
					t.Fatalf("resize %d crop %d %v: byte %d: plan gives %d, Resized %d", p.resizeSize(), p.Size, sz, i, got.Pix[i], want.Pix[i])
				}
			}
		}
	}
}

// TestPlanRandomReproducesRandomResized: PlanRandom's plan, applied by the
// second implementation, gives RandomResized's bytes exactly from the same
// random state, for crops that need both passes, one or none (a crop of the
// output's own size), and for the ImageNet preprocessor's sizes too.
func TestPlanRandomReproducesRandomResized(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, p := range []Preprocessor{CLIPPreprocessor(224), ImageNetPreprocessor(256, 224), CLIPPreprocessor(32)} {
		for _, sz := range [][2]int{{500, 375}, {375, 500}, {224, 224}, {240, 236}, {60, 64}, {1000, 230}, {33, 32}} {
			img := NewRGB(sz[0], sz[1])
			for i := range img.Pix {
				img.Pix[i] = uint8(rng.IntN(256))
			}
			for v := range 4 {
				seed := uint64(10*v + sz[0])
				want := p.RandomResized(img, rand.New(rand.NewPCG(seed, 1)))
				got := applyPlan(img, p.PlanRandom(sz[0], sz[1], rand.New(rand.NewPCG(seed, 1))))
				for i := range want.Pix {
					if got.Pix[i] != want.Pix[i] {
						t.Fatalf("size %d %v view %d: byte %d: plan gives %d, RandomResized %d", p.Size, sz, v, i, got.Pix[i], want.Pix[i])
					}
				}
			}
		}
	}
}

// TestNormalizeTable: the table is what Normalize applies.
func TestNormalizeTable(t *testing.T) {
	p := CLIPPreprocessor(2)
	img := &RGB{W: 2, H: 2, Pix: []uint8{0, 1, 2, 100, 101, 102, 200, 201, 202, 253, 254, 255}}
	out := p.Normalize(img, nil)
	lut := p.NormalizeTable()
	for i := range 4 {
		for c := range 3 {
			if out[c*4+i] != lut[c][img.Pix[3*i+c]] {
				t.Fatalf("pixel %d channel %d: Normalize %v, table %v", i, c, out[c*4+i], lut[c][img.Pix[3*i+c]])
			}
		}
	}
}
