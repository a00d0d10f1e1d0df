package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
)

// ViT times the ViT-B/16 image tower (random weights, 224 px, batch 8) on
// the CPU backend against its GEMM-only ceiling: the tower's FLOPs (matrix
// products and attention) at the GFLOP/s the same backend reaches on the
// tower's four Linear shapes, measured in the same run. The ratio is the
// share of the machine's matmul speed the whole tower keeps (layer norms,
// activations, attention softmax and copies are the rest).
var ViT = Bench{
	Name: "vit",
	Help: "ViT-B/16 image tower images/s (CPU, batch 8) vs the GEMM-only ceiling at the backend's GFLOP/s",
	Run:  runViT,
}

func runViT(ctx context.Context, emit func(Figure)) error {
	const batch = 8
	cfg, _ := clip.Builtin("ViT-B-16")
	v := cfg.Vision
	be := backend.NewCPU()

	// The ceiling: the tower's Linear shapes for this batch, one timed pass each after a warm-up.
	N, W, F := batch*v.Tokens(), v.Width, v.Hidden()
	shapes := [][2]int{{3 * W, W}, {W, W}, {F, W}, {W, F}} // (out, in)
	var flops float64
	var gemmTime time.Duration
	for _, s := range shapes {
		x, w, out := be.Zeros(N, s[1]), be.Zeros(s[0], s[1]), be.Zeros(N, s[0])
		vitFill(be, x, 1)
		vitFill(be, w, 2)
		be.Linear(out, x, w, nil, backend.ActNone)
		best := time.Duration(1<<63 - 1)
		for range 3 {
			if err := ctx.Err(); err != nil {
				return err
			}
			t0 := time.Now()
			be.Linear(out, x, w, nil, backend.ActNone)
			best = min(best, time.Since(t0))
		}
		gemmTime += best
		flops += 2 * float64(N) * float64(s[0]) * float64(s[1])
		be.Free(x)
		be.Free(w)
		be.Free(out)
	}
	gflops := flops / gemmTime.Seconds() / 1e9
	perImage := v.FLOPs(cfg.EmbedDim) / 1e9
	ceiling := gflops / perImage

	vt := clip.NewRandomVisionTower(be, cfg, 1)
	defer vt.Free()
	rng := rand.New(rand.NewPCG(1, 2))
	px := make([]float32, batch*3*v.ImageSize*v.ImageSize)
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	// The ceiling's GEMMs warmed the backend up. At least 2 batches and 5 s,
	// at most 30 s of timing.
	var n int
	t0 := time.Now()
	for n < 2 || time.Since(t0) < 5*time.Second {
		if err := ctx.Err(); err != nil {
			return err
		}
		vt.Encode(px, batch)
		n++
		if time.Since(t0) > 30*time.Second {
			break
		}
	}
	ips := float64(n*batch) / time.Since(t0).Seconds()
	emit(Figure{Name: "vit/B-16/gemm", Value: gflops, Unit: "GFLOP/s", HigherIsBetter: true,
		Note: fmt.Sprintf("%s, the tower's Linear shapes at %d rows", be.Name(), N)})
	emit(Figure{Name: "vit/B-16/images", Value: ips, Unit: "img/s", RefName: "GEMM-only ceiling", Ref: ceiling, HigherIsBetter: true,
		Note: fmt.Sprintf("batch %d, %.1f GFLOP/image, %d batches", batch, perImage, n)})
	return nil
}

// vitFill writes uniform values in [-1,1) into a CPU tensor.
func vitFill(be backend.Backend, t backend.Tensor, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	d := make([]float32, t.Len())
	for i := range d {
		d[i] = rng.Float32()*2 - 1
	}
	src := be.FromFloat32(d, t.Shape()...)
	be.Copy(t, src)
	be.Free(src)
}
