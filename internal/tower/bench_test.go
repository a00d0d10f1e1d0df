package tower

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/dinov2"
	"github.com/litcache/litcache/internal/swin"
)

// linearShape is one Linear of a tower: N rows, I inputs → O outputs, run
// count times per forward pass.
type linearShape struct{ N, I, O, count int }

// gemmCeiling times each shape's Linear on be (best of 3 after a warm-up)
// and returns the backend's GFLOP/s over the tower's matrix products,
// weighted as the tower runs them: the rate the tower would reach if all
// its FLOPs went at the speed of its own GEMMs.
func gemmCeiling(be backend.Backend, shapes []linearShape) float64 {
	var flops, secs float64
	for _, s := range shapes {
		x, w, out := be.Zeros(s.N, s.I), be.Zeros(s.O, s.I), be.Zeros(s.N, s.O)
		fillRand(be, x, 1)
		fillRand(be, w, 2)
		be.Linear(out, x, w, nil, backend.ActNone)
		best := time.Duration(1<<63 - 1)
		for range 3 {
			t0 := time.Now()
			be.Linear(out, x, w, nil, backend.ActNone)
			best = min(best, time.Since(t0))
		}
		flops += float64(s.count) * 2 * float64(s.N) * float64(s.I) * float64(s.O)
		secs += float64(s.count) * best.Seconds()
		for _, t := range []backend.Tensor{x, w, out} {
			be.Free(t)
		}
	}
	return flops / secs / 1e9
}

func fillRand(be backend.Backend, t backend.Tensor, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	d := backend.Data(t)
	for i := range d {
		d[i] = float32(rng.NormFloat64())
	}
}

func dinov2Shapes(c dinov2.Config, B int) []linearShape {
	N, C, F, d := B*c.Tokens(), c.EmbedDim, c.Hidden(), c.Depth
	return []linearShape{{N, C, 3 * C, d}, {N, C, C, d}, {N, C, F, d}, {N, F, C, d}}
}

func swinShapes(c swin.Config, B int) []linearShape {
	var out []linearShape
	for i, d := range c.Depths {
		s := c.StageSide(i)
		N, C, F := B*s*s, c.StageDim(i), c.Hidden(i)
		out = append(out, linearShape{N, C, 3 * C, d}, linearShape{N, C, C, d}, linearShape{N, C, F, d}, linearShape{N, F, C, d})
		if i < len(c.Depths)-1 {
			o := c.StageSide(i + 1)
			out = append(out, linearShape{B * o * o, 4 * C, 2 * C, 1})
		}
	}
	return out
}

// BenchmarkTowerCPU times DINOv2-B/14 and Swin-T (random weights, 224 px)
// through the registry on the CPU backend and reports, beside images/s,
// the ceiling measured in the same run: the tower's FLOPs (Config.FLOPs) at
// the GFLOP/s the backend reaches on the tower's own Linear shapes. ratio =
// img/s ÷ ceiling-img/s is the share of the matmul speed the whole tower
// keeps (attention, norms, activations, gathers are the rest).
//
//	go test -run - -bench TowerCPU -benchtime 3x ./internal/tower/
func BenchmarkTowerCPU(b *testing.B) {
	for _, c := range []struct {
		name   string
		batch  int
		shapes func(B int) []linearShape
	}{
		{"dinov2-vitb14", 4, func(B int) []linearShape { c, _ := dinov2.Builtin("dinov2-vitb14"); return dinov2Shapes(c, B) }},
		{"swin-t", 8, func(B int) []linearShape { c, _ := swin.Builtin("swin-t"); return swinShapes(c, B) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			be := backend.NewCPU()
			tw, err := Load(be, Spec{Model: c.name, Weights: "random:1"})
			if err != nil {
				b.Fatal(err)
			}
			defer tw.Free()
			gflops := gemmCeiling(be, c.shapes(c.batch))
			ceiling := gflops / (tw.Config().FLOPs() / 1e9)
			px := randPixels(c.batch, tw.ImageSize(), 7)
			tw.Encode(px, c.batch) // warm-up: position tables, biases, buffers
			b.ResetTimer()
			for range b.N {
				tw.Encode(px, c.batch)
			}
			ips := float64(b.N*c.batch) / b.Elapsed().Seconds()
			b.ReportMetric(ips, "img/s")
			b.ReportMetric(ceiling, "ceiling-img/s")
			b.ReportMetric(ips/ceiling, "ratio")
			b.ReportMetric(gflops, "gemm-GFLOP/s")
			b.ReportMetric(tw.Config().FLOPs()/1e9, "GFLOP/img")
		})
	}
}
