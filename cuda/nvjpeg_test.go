package cuda

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand"
	randv2 "math/rand/v2"
	"testing"

	"github.com/litcache/litcache/internal/imageproc"
)

// photoJPEG is a photo-like test image (smooth gradients, edges, noise) of
// w×h encoded at quality 90 with 4:2:0 chroma, as most photos are.
func photoJPEG(t *testing.T, w, h int, seed int64) []byte {
	rng := rand.New(rand.NewSource(seed))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	cx, cy := rng.Float64()*float64(w), rng.Float64()*float64(h)
	for y := range h {
		for x := range w {
			d := math.Hypot(float64(x)-cx, float64(y)-cy)
			r := 128 + 100*math.Sin(d/17) + rng.NormFloat64()*6
			g := float64(x*255/w) + rng.NormFloat64()*6
			b := float64(y*255/h) * (1 + 0.3*math.Cos(float64(x)/9))
			if (x/40+y/40)%2 == 0 {
				b = 255 - b
			}
			img.Set(x, y, color.RGBA{clamp8(r), clamp8(g), clamp8(b), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func clamp8(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v)))) }

// TestNVJPEGMatchesCPU (needs a GPU with nvJPEG): 500-px JPEGs decoded by
// nvJPEG and resized and normalised on the GPU, one at a time and batched,
// against imageproc's decode and eval transform on the CPU (batched: with a
// random resized crop of each beside its eval view). The resize
// arithmetic is exact (the emulator test); what differs is the JPEG
// decoder's IDCT and chroma upsampling, so the bound is the bf16 tolerance
// of the tower's input, 2e-2 relative. The decoded RGB's mean and largest
// differences are logged for the report.
func TestNVJPEGMatchesCPU(t *testing.T) {
	g := gpuBackend(t, BF16)
	d, err := g.NewJPEGDecoder()
	if errors.Is(err, ErrNoNVJPEG) {
		t.Skipf("no nvJPEG: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pre := imageproc.CLIPPreprocessor(224)
	var jpegs [][]byte
	var want, wantViews []float32
	for i, sz := range [][2]int{{500, 375}, {375, 500}, {500, 333}, {500, 500}} {
		data := photoJPEG(t, sz[0], sz[1], int64(i))
		jpegs = append(jpegs, data)
		rgb, err := imageproc.DecodeRGB(data)
		if err != nil {
			t.Fatal(err)
		}
		// decoded RGB against the CPU decoder
		dev := g.alloc(uint64(len(rgb.Pix)))
		w, h, err := d.DecodeInto(data, dev)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(rgb.Pix))
		if err := g.dv.CopyToHost(got, dev); err != nil {
			t.Fatal(err)
		}
		g.release(dev)
		var sum float64
		worst := 0
		for k := range got {
			diff := int(got[k]) - int(rgb.Pix[k])
			if diff < 0 {
				diff = -diff
			}
			sum += float64(diff)
			worst = max(worst, diff)
		}
		t.Logf("%dx%d: nvJPEG vs CPU decode: mean abs difference %.3f levels, max %d", w, h, sum/float64(len(got)), worst)
		want = append(want, pre.Transform(rgb, nil)...)
		wantViews = append(wantViews, pre.Transform(rgb, nil)...)
		wantViews = append(wantViews, pre.TransformRandom(rgb, randv2.New(randv2.NewPCG(uint64(i), 1)), nil)...)
	}
	for _, batched := range []bool{false, true} {
		ib, err := g.NewImageBatch(pre, 2*len(jpegs))
		if err != nil {
			t.Fatal(err)
		}
		var scratch []Buffer
		if batched {
			// DecodeAll, then each image's eval view and a random resized crop
			imgs, errs, err := d.DecodeAll(jpegs)
			if err != nil {
				t.Fatal(err)
			}
			for i, img := range imgs {
				if errs[i] != nil {
					t.Fatalf("image %d: %v", i, errs[i])
				}
				if err := ib.AddPlan(img, pre.Plan(img.W, img.H)); err != nil {
					t.Fatal(err)
				}
				if err := ib.AddPlan(img, pre.PlanRandom(img.W, img.H, randv2.New(randv2.NewPCG(uint64(i), 1)))); err != nil {
					t.Fatal(err)
				}
			}
		} else {
			for _, data := range jpegs {
				dev := g.alloc(uint64(3 * 500 * 500))
				scratch = append(scratch, dev)
				w, h, err := d.DecodeInto(data, dev)
				if err != nil {
					t.Fatal(err)
				}
				if err := ib.Add(dev.Ptr, 3*w, w, h); err != nil {
					t.Fatal(err)
				}
			}
		}
		x, err := ib.Tensor()
		if err != nil {
			t.Fatal(err)
		}
		got := g.ToFloat32(x, nil)
		g.Free(x)
		ib.Close()
		for _, b := range scratch {
			g.release(b)
		}
		ref := want
		if batched {
			ref = wantViews
		}
		e := relErr(got, ref)
		t.Logf("batched=%v: GPU decode+preprocess vs CPU: relative error %.3g", batched, e)
		if !(e <= 2e-2) {
			t.Errorf("batched=%v: relative error %.3g > 2e-2", batched, e)
		}
	}
}
