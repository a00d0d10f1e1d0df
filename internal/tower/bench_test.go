package tower

import (
	"math"
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

// gemmPass holds one Linear per shape of a tower, ready to time.
type gemmPass struct {
	be     backend.Backend
	shapes []linearShape
	x, w   []backend.Tensor
	out    []backend.Tensor
	flops  float64 // the tower's matrix-product FLOPs per forward pass, weighted by count
}

func newGemmPass(be backend.Backend, shapes []linearShape) *gemmPass {
	g := &gemmPass{be: be, shapes: shapes}
	for i, s := range shapes {
		g.x = append(g.x, be.Zeros(s.N, s.I))
		g.w = append(g.w, be.Zeros(s.O, s.I))
		g.out = append(g.out, be.Zeros(s.N, s.O))
		fillRand(be, g.x[i], 1)
		fillRand(be, g.w[i], 2)
		g.flops += float64(s.count) * 2 * float64(s.N) * float64(s.I) * float64(s.O)
	}
	return g
}

// seconds runs each shape's Linear once and returns the time the tower's
// GEMMs would take at that speed (each shape's time × its count).
func (g *gemmPass) seconds() float64 {
	var secs float64
	for i, s := range g.shapes {
		t0 := time.Now()
		g.be.Linear(g.out[i], g.x[i], g.w[i], nil, backend.ActNone)
		secs += float64(s.count) * time.Since(t0).Seconds()
	}
	return secs
}

func (g *gemmPass) free() {
	for i := range g.shapes {
		g.be.Free(g.x[i])
		g.be.Free(g.w[i])
		g.be.Free(g.out[i])
	}
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
// through the registry on the CPU backend against the ceiling measured in
// the same run: the tower's FLOPs (Config.FLOPs) at the GFLOP/s the backend
// reaches on the tower's own Linear shapes. The two are interleaved, one
// batch then one pass over the shapes per iteration, and each side reports
// its best iteration, so that load from other work on a shared machine hits
// both alike. ratio = img/s ÷ ceiling-img/s is the share of the matmul
// speed the whole tower keeps (attention, norms, activations, gathers are
// the rest).
//
//	go test -run - -bench TowerCPU -benchtime 5x ./internal/tower/
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
			g := newGemmPass(be, c.shapes(c.batch))
			defer g.free()
			px := randPixels(c.batch, tw.ImageSize(), 7)
			tw.Encode(px, c.batch) // warm-up: position tables, biases, buffers
			g.seconds()
			bestTower, bestGemm := math.Inf(1), math.Inf(1)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				tw.Encode(px, c.batch)
				bestTower = min(bestTower, time.Since(t0).Seconds())
				bestGemm = min(bestGemm, g.seconds())
			}
			gflops := g.flops / bestGemm / 1e9
			ips := float64(c.batch) / bestTower
			ceiling := gflops / (tw.Config().FLOPs() / 1e9)
			b.ReportMetric(ips, "img/s")
			b.ReportMetric(ceiling, "ceiling-img/s")
			b.ReportMetric(ips/ceiling, "ratio")
			b.ReportMetric(gflops, "gemm-GFLOP/s")
			b.ReportMetric(tw.Config().FLOPs()/1e9, "GFLOP/img")
		})
	}
}
