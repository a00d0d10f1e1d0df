package emu_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/half"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/imageproc/jpegtest"
)

// noisyImage is a w×h image of smooth gradients and noise.
func noisyImage(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 3))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x*255/w) ^ uint8(rng.IntN(32)), uint8(y * 255 / h), uint8(rng.IntN(256)), 255})
		}
	}
	return img
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withComment puts a comment segment right after the JPEG's SOI marker.
func withComment(data []byte, text string) []byte {
	n := len(text) + 2
	seg := append([]byte{0xFF, 0xFE, byte(n >> 8), byte(n)}, text...)
	return append(append(append([]byte{}, data[:2]...), seg...), data[2:]...)
}

// TestGPUDecodeMatchesCPU drives the GPU decode path's device side as
// extract does — DecodeAll over a batch, then AddPlan per view (the eval
// plan and random resized crops) and AddHost for a view the CPU made — and
// checks every value against the CPU's decode and transforms rounded to
// bf16: exact, because the emulated nvJPEG decodes with libjpeg-turbo as
// imageproc does and the resize kernels apply imageproc's own plans. Images
// nvJPEG cannot decode (a CMYK JPEG, a PNG, one it is told to refuse) come
// back as per-image errors wrapping ErrJPEGUnsupported, and the batched
// decode's failure on them does not lose the others.
func TestGPUDecodeMatchesCPU(t *testing.T) {
	if _, ok := imageproc.TurboJPEG(); !ok {
		t.Skip("the emulated nvJPEG decodes with libjpeg-turbo, not found here")
	}
	g := open(t, cuda.Options{Precision: cuda.BF16})
	d, err := g.NewJPEGDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const S, views = 32, 3
	pre := imageproc.CLIPPreprocessor(S)
	gray := image.NewGray(image.Rect(0, 0, 41, 37))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 7)
	}
	cmykPlane := make([]uint8, 40*30)
	for i := range cmykPlane {
		cmykPlane[i] = uint8(i)
	}
	c := jpegtest.Comp{H: 1, V: 1, Plane: cmykPlane}
	var pngBytes bytes.Buffer
	if err := png.Encode(&pngBytes, noisyImage(50, 40, 9)); err != nil {
		t.Fatal(err)
	}
	jpegs := [][]byte{
		encodeJPEG(t, noisyImage(60, 45, 1)),
		jpegtest.Image{W: 40, H: 30, Adobe: 0, Comps: []jpegtest.Comp{c, c, c, c}}.Encode(), // CMYK
		encodeJPEG(t, gray),
		pngBytes.Bytes(),
		withComment(encodeJPEG(t, noisyImage(48, 64, 2)), "litcache-emu: refuse"),
		encodeJPEG(t, noisyImage(45, 60, 3)),
		encodeJPEG(t, noisyImage(33, 32, 4)),
	}
	refused := map[int]bool{1: true, 3: true, 4: true}
	imgs, errs, err := d.DecodeAll(jpegs)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := g.NewImageBatch(pre, views*len(jpegs))
	if err != nil {
		t.Fatal(err)
	}
	defer ib.Close()
	var want []float32
	for i, data := range jpegs {
		if refused[i] != (errs[i] != nil) || (errs[i] != nil && !errors.Is(errs[i], cuda.ErrJPEGUnsupported)) {
			t.Fatalf("image %d: error %v, want refused=%v", i, errs[i], refused[i])
		}
		if errs[i] != nil {
			continue
		}
		cpu, err := imageproc.DecodeRGB(data)
		if err != nil {
			t.Fatal(err)
		}
		if imgs[i].W != cpu.W || imgs[i].H != cpu.H {
			t.Fatalf("image %d: %d×%d on the GPU, %d×%d on the CPU", i, imgs[i].W, imgs[i].H, cpu.W, cpu.H)
		}
		for v := range views {
			var pl imageproc.ResizePlan
			var pix []float32
			if v == 0 {
				pl, pix = pre.Plan(cpu.W, cpu.H), pre.Transform(cpu, nil)
			} else {
				pl = pre.PlanRandom(cpu.W, cpu.H, rand.New(rand.NewPCG(uint64(i), uint64(v))))
				pix = pre.TransformRandom(cpu, rand.New(rand.NewPCG(uint64(i), uint64(v))), nil)
			}
			if v == 2 && i == 2 {
				// a view the CPU made, between the GPU's
				r := pre.RandomResized(cpu, rand.New(rand.NewPCG(uint64(i), uint64(v))))
				if err := ib.AddHost(r.Pix); err != nil {
					t.Fatal(err)
				}
			} else if err := ib.AddPlan(imgs[i], pl); err != nil {
				t.Fatal(err)
			}
			want = append(want, pix...)
		}
	}
	x, err := ib.Tensor()
	if err != nil {
		t.Fatal(err)
	}
	got := g.ToFloat32(x, nil)
	g.Free(x)
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	for k, v := range want {
		if w := half.BF16ToF32(half.F32ToBF16(v)); got[k] != w {
			t.Fatalf("view %d value %d: GPU %v, CPU %v", k/(3*S*S), k%(3*S*S), got[k], w)
		}
	}
	// The plan is checked against the image before any kernel reads it.
	if err := ib.AddPlan(imgs[0], pre.Plan(imgs[0].W, 3*imgs[0].H)); err == nil {
		t.Fatal("a plan reading rows past the image was accepted")
	}
}
