package bundle_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/stages/bundle"
)

// BenchmarkViTB16Batch times a ViT-B/16 bundle tower (random weights) on
// the CPU backend at batch sizes 1, 2, 4, 8 and 16, interleaved call by call
// so that a shared machine's load hits every size alike: the batch predict
// and serve give the tower is a choice (bundle.DefaultBatch), and batch 8
// is bench vit's. Each b.N round encodes 16 images at every size; the
// figures are images/s per size.
//
//	go test -run '^$' -bench ViTB16Batch -benchtime 3x ./stages/bundle/
func BenchmarkViTB16Batch(b *testing.B) {
	t, err := tower.Load(backend.NewCPU(), tower.Spec{Model: "ViT-B-16", Weights: "random:1"})
	if err != nil {
		b.Fatal(err)
	}
	tw := bundle.TowerOf(t)
	defer tw.Free()
	S := t.ImageSize()
	rng := rand.New(rand.NewPCG(1, 2))
	px := make([]float32, 16*3*S*S)
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	sizes := []int{1, 2, 4, 8, 16}
	spent := make([]time.Duration, len(sizes))
	for _, B := range sizes {
		tw.Encode(px[:B*3*S*S], B) // warm-up: buffers of every shape
	}
	b.ResetTimer()
	for range b.N {
		for i, B := range sizes {
			t0 := time.Now()
			for k := 0; k < 16; k += B {
				tw.Encode(px[:B*3*S*S], B)
			}
			spent[i] += time.Since(t0)
		}
	}
	for i, B := range sizes {
		b.ReportMetric(float64(16*b.N)/spent[i].Seconds(), fmt.Sprintf("img/s@%d", B))
	}
}
