package tower

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/litcache/litcache/internal/backend"
)

// gemmPass holds one Linear per shape of a tower, ready to time.
type gemmPass struct {
	be     backend.Backend
	shapes []Linear
	x, w   []backend.Tensor
	out    []backend.Tensor
	flops  float64 // the tower's matrix-product FLOPs per forward pass, weighted by count
}

func newGemmPass(be backend.Backend, shapes []Linear) *gemmPass {
	g := &gemmPass{be: be, shapes: shapes}
	for i, s := range shapes {
		g.x = append(g.x, be.Zeros(s.Rows, s.In))
		g.w = append(g.w, be.Zeros(s.Out, s.In))
		g.out = append(g.out, be.Zeros(s.Rows, s.Out))
		fillRand(be, g.x[i], 1)
		fillRand(be, g.w[i], 2)
		g.flops += s.FLOPs()
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
		secs += float64(s.Count) * time.Since(t0).Seconds()
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

// BenchmarkTowerCPU times DINOv2-B/14 and Swin-T (random weights, 224 px)
// through the registry on the CPU backend against the ceiling measured in
// the same run: the tower's FLOPs (Config.FLOPs) at the GFLOP/s the backend
// reaches on the tower's own Linear shapes (Config.Linears). The two are interleaved, one
// batch then one pass over the shapes per iteration, and each side reports
// its best iteration, so that load from other work on a shared machine hits
// both alike. ratio = img/s ÷ ceiling-img/s is the share of the matmul
// speed the whole tower keeps (attention, norms, activations, gathers are
// the rest).
//
//	go test -run - -bench TowerCPU -benchtime 5x ./internal/tower/
func BenchmarkTowerCPU(b *testing.B) {
	for _, c := range []struct {
		name  string
		batch int
	}{
		{"dinov2-vitb14", 4},
		{"swin-t", 8},
	} {
		b.Run(c.name, func(b *testing.B) {
			be := backend.NewCPU()
			tw, err := Load(be, Spec{Model: c.name, Weights: "random:1"})
			if err != nil {
				b.Fatal(err)
			}
			defer tw.Free()
			g := newGemmPass(be, tw.Config().Linears(c.batch))
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
