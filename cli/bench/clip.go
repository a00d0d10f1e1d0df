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
// the CPU backend, against the time the tower's FLOPs (matrix products and
// attention) take at the sgemmRef's rate (OpenBLAS cblas_sgemm, or gonum's
// Sgemm without OpenBLAS) on the tower's four Linear shapes, measured in the
// same run. Both sides are the fastest of 3 timed runs after a warm-up: a
// batch of the tower, a call of each GEMM. The backend's own GEMM rate on
// those shapes is printed too, against the same reference, so the ratio of
// the tower splits into GEMM speed and everything else (layer norms,
// activations, attention softmax, copies).
var ViT = Bench{
	Name: "vit",
	Help: "ViT-B/16 image tower images/s (CPU, batch 8) vs its FLOPs at OpenBLAS sgemm's rate on its Linear shapes (gonum without OpenBLAS)",
	Run:  runViT,
}

const vitRuns = 3 // timed runs per side, after one warm-up

func runViT(ctx context.Context, emit func(Figure)) error {
	const batch = 8
	cfg, _ := clip.Builtin("ViT-B-16")
	v := cfg.Vision
	be := backend.NewCPU()
	ref := newSgemmRef()

	// The tower's Linear shapes for this batch: the reference's rate and the
	// backend's, each the fastest of vitRuns calls.
	N, W, F := batch*v.Tokens(), v.Width, v.Hidden()
	shapes := [][2]int{{3 * W, W}, {W, W}, {F, W}, {W, F}} // (out, in)
	var flops float64
	var refTime, beTime time.Duration
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range shapes {
		x, w := uniform(rng, N*s[1]), uniform(rng, s[0]*s[1])
		out := make([]float32, N*s[0])
		xt, wt, ot := be.FromFloat32(x, N, s[1]), be.FromFloat32(w, s[0], s[1]), be.Zeros(N, s[0])
		best, err := bestOf(ctx, vitRuns, []func(){
			func() { ref.linear(N, s[0], s[1], x, w, out) },
			func() { be.Linear(ot, xt, wt, nil, backend.ActNone) },
		})
		if err != nil {
			return err
		}
		refTime += best[0]
		beTime += best[1]
		flops += 2 * float64(N) * float64(s[0]) * float64(s[1])
		be.Free(xt)
		be.Free(wt)
		be.Free(ot)
	}
	refGFLOPs := flops / refTime.Seconds() / 1e9
	perImage := v.FLOPs(cfg.EmbedDim) / 1e9
	refImages := refGFLOPs / perImage

	vt := clip.NewRandomVisionTower(be, cfg, 1)
	defer vt.Free()
	px := make([]float32, batch*3*v.ImageSize*v.ImageSize)
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	best, err := bestOf(ctx, vitRuns, []func(){func() { vt.Encode(px, batch) }})
	if err != nil {
		return err
	}
	ips := batch / best[0].Seconds()
	emit(Figure{Name: "vit/B-16/gemm", Value: flops / beTime.Seconds() / 1e9, Unit: "GFLOP/s", RefName: ref.name, Ref: refGFLOPs, HigherIsBetter: true,
		Note: fmt.Sprintf("%s on the tower's Linear shapes at %d rows, fastest of %d; %s", be.Name(), N, vitRuns, ref.note)})
	emit(Figure{Name: "vit/B-16/images", Value: ips, Unit: "img/s", RefName: "tower FLOPs at " + ref.name + " rate", Ref: refImages, HigherIsBetter: true,
		Note: fmt.Sprintf("batch %d, %.1f GFLOP/image, fastest of %d batches", batch, perImage, vitRuns)})
	return nil
}

// bestOf runs each function once to warm up, then n times in turns (so that
// load from other processes falls on all alike), and returns each one's
// fastest run.
func bestOf(ctx context.Context, n int, fs []func()) ([]time.Duration, error) {
	best := make([]time.Duration, len(fs))
	for _, f := range fs {
		f()
	}
	for range n {
		for i, f := range fs {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			t0 := time.Now()
			f()
			if d := time.Since(t0); best[i] == 0 || d < best[i] {
				best[i] = d
			}
		}
	}
	return best, nil
}

// uniform is n values uniform in [-1,1).
func uniform(rng *rand.Rand, n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = rng.Float32()*2 - 1
	}
	return d
}
