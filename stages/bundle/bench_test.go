package bundle_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/stages/bundle"
)

// BenchmarkViTB16Batch times a ViT-B/16 bundle tower (random weights) on
// the CPU backend at several batch sizes: the batch predict and serve give
// the tower is a choice, and batch 8 is bench vit's reference point. Run
// with -count to interleave the sizes on a shared machine:
//
//	go test -run '^$' -bench ViTB16Batch -benchtime 2x -count 3 ./stages/bundle/
func BenchmarkViTB16Batch(b *testing.B) {
	cfg, _ := clip.Builtin("ViT-B-16")
	tower := bundle.CLIPTower(clip.NewRandomVisionTower(backend.NewCPU(), cfg, 1))
	defer tower.Free()
	S := cfg.Vision.ImageSize
	rng := rand.New(rand.NewPCG(1, 2))
	px := make([]float32, 16*3*S*S)
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	for _, B := range []int{1, 2, 4, 8, 16} {
		b.Run(fmt.Sprintf("batch=%d", B), func(b *testing.B) {
			tower.Encode(px[:B*3*S*S], B) // warm-up
			b.ResetTimer()
			for range b.N {
				tower.Encode(px[:B*3*S*S], B)
			}
			b.ReportMetric(float64(b.N*B)/b.Elapsed().Seconds(), "img/s")
		})
	}
}
