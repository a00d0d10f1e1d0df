package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/tower"
)

// Towers times the DINOv2-B/14 and Swin-T image towers (random weights, 224
// px) through the registry on the CPU backend, against the time their FLOPs
// (tower.Config.FLOPs, the count BenchmarkTowerCPU uses) take at sgemmRef's
// rate (OpenBLAS cblas_sgemm, or gonum's Sgemm without OpenBLAS) on the
// tower's own Linear shapes (tower.Config.Linears, each timed once and
// weighted by how often a forward pass runs it). Each iteration runs one
// batch of the tower, one reference pass and one pass of the backend's GEMM
// in turn, so load from other work falls on all alike; every side reports
// its fastest of towerRuns iterations after a warm-up. The backend's GEMM
// rate on those shapes is printed too, so that the tower's ratio splits into
// GEMM speed and the rest (attention, norms, activations, window gathers).
var Towers = Bench{
	Name: "towers",
	Help: "DINOv2-B/14 and Swin-T images/s (CPU, batch 4 and 8) vs their FLOPs at OpenBLAS sgemm's rate on their Linear shapes (gonum without OpenBLAS)",
	Run:  runTowers,
}

const towerRuns = 3 // timed iterations per side, after one warm-up

func runTowers(ctx context.Context, emit func(Figure)) error {
	ref := newSgemmRef()
	for _, c := range []struct {
		model, short string
		batch        int
	}{
		{"dinov2-vitb14", "dinov2-B-14", 4},
		{"swin-t", "swin-T", 8},
	} {
		if err := benchTower(ctx, ref, c.model, c.short, c.batch, emit); err != nil {
			return fmt.Errorf("%s: %w", c.model, err)
		}
	}
	return nil
}

func benchTower(ctx context.Context, ref sgemmRef, model, short string, batch int, emit func(Figure)) error {
	be := backend.NewCPU()
	tw, err := tower.Load(be, tower.Spec{Model: model, Weights: "random:1"})
	if err != nil {
		return err
	}
	defer tw.Free()
	shapes := tw.Config().Linears(batch)
	g := newLinearPass(be, shapes)
	defer g.free(be)
	rng := rand.New(rand.NewPCG(3, 4))
	S := tw.ImageSize()
	px := make([]float32, batch*3*S*S)
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	bestTower, bestRef, bestBE := math.Inf(1), math.Inf(1), math.Inf(1)
	for i := 0; i <= towerRuns; i++ { // i = 0 warms up: position tables, buffers, packing
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		tw.Encode(px, batch)
		t := time.Since(t0).Seconds()
		r := g.seconds(func(k int) {
			ref.linear(g.shapes[k].Rows, g.shapes[k].Out, g.shapes[k].In, g.hx[k], g.hw[k], g.hout[k])
		})
		b := g.seconds(func(k int) { be.Linear(g.out[k], g.x[k], g.w[k], nil, backend.ActNone) })
		if i > 0 {
			bestTower, bestRef, bestBE = min(bestTower, t), min(bestRef, r), min(bestBE, b)
		}
	}
	perImage := tw.Config().FLOPs() / 1e9
	refGFLOPs := g.flops / bestRef / 1e9
	rows := shapes[0].Rows
	emit(Figure{Name: "towers/" + short + "/gemm", Value: g.flops / bestBE / 1e9, Unit: "GFLOP/s", RefName: ref.name, Ref: refGFLOPs, HigherIsBetter: true,
		Note: fmt.Sprintf("%s on the tower's %d Linear shapes (first at %d rows), count-weighted pass, fastest of %d; %s", be.Name(), len(shapes), rows, towerRuns, ref.note)})
	emit(Figure{Name: "towers/" + short + "/images", Value: float64(batch) / bestTower, Unit: "img/s", RefName: "tower FLOPs at " + ref.name + " rate", Ref: refGFLOPs / perImage, HigherIsBetter: true,
		Note: fmt.Sprintf("batch %d, %d px, %.1f GFLOP/image, fastest of %d batches interleaved with the GEMM passes", batch, S, perImage, towerRuns)})
	return nil
}

// linearPass holds one operand set per Linear shape of a tower, on the
// host (for the reference) and on the backend.
type linearPass struct {
	shapes       []tower.Linear
	hx, hw, hout [][]float32
	x, w, out    []backend.Tensor
	flops        float64 // the shapes' FLOPs, weighted by count
}

func newLinearPass(be backend.Backend, shapes []tower.Linear) *linearPass {
	rng := rand.New(rand.NewPCG(1, 2))
	g := &linearPass{shapes: shapes}
	for _, s := range shapes {
		x, w := uniform(rng, s.Rows*s.In), uniform(rng, s.Out*s.In)
		g.hx, g.hw, g.hout = append(g.hx, x), append(g.hw, w), append(g.hout, make([]float32, s.Rows*s.Out))
		g.x, g.w, g.out = append(g.x, be.FromFloat32(x, s.Rows, s.In)), append(g.w, be.FromFloat32(w, s.Out, s.In)), append(g.out, be.Zeros(s.Rows, s.Out))
		g.flops += s.FLOPs()
	}
	return g
}

// seconds runs run(k) once per shape k and returns the time a forward pass's
// products would take at that speed: each shape's time × its count.
func (g *linearPass) seconds(run func(k int)) float64 {
	var secs float64
	for k, s := range g.shapes {
		t0 := time.Now()
		run(k)
		secs += float64(s.Count) * time.Since(t0).Seconds()
	}
	return secs
}

func (g *linearPass) free(be backend.Backend) {
	for k := range g.shapes {
		be.Free(g.x[k])
		be.Free(g.w[k])
		be.Free(g.out[k])
	}
}
