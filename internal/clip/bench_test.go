package clip

import (
	"math/rand/v2"
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

// BenchmarkVisionEncodeB16 runs the ViT-B/16 image tower on a batch of 8
// random images (the `litcache bench vit` figure without its ceiling).
func BenchmarkVisionEncodeB16(b *testing.B) {
	cfg, _ := Builtin("ViT-B-16")
	be := backend.NewCPU()
	vt := NewRandomVisionTower(be, cfg, 1)
	const B = 8
	S := cfg.Vision.ImageSize
	rng := rand.New(rand.NewPCG(1, 2))
	px := make([]float32, B*3*S*S)
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	b.ResetTimer()
	for range b.N {
		vt.Encode(px, B)
	}
	b.ReportMetric(float64(b.N*B)/b.Elapsed().Seconds(), "img/s")
}

// BenchmarkTextStepB16Text runs one LiT step's text work (Forward, loss,
// Backward) for the ViT-B text tower, batch 64 at 27 tokens (the longest iNat caption).
func BenchmarkTextStep(b *testing.B) {
	cfg, _ := Builtin("ViT-B-16")
	be := backend.NewCPU()
	tt := NewRandomTextTower(be, cfg, 1)
	const B, T = 64, 27
	rng := rand.New(rand.NewPCG(3, 4))
	ids := make([]int32, B*T)
	for i := range ids {
		ids[i] = int32(rng.IntN(cfg.Text.VocabSize - 2))
	}
	for r := 0; r < B; r++ {
		ids[r*T+T-1] = cfg.Text.EOT()
	}
	img := be.Zeros(B, cfg.EmbedDim)
	be.L2Normalize(img, be.FromFloat32(randn(rng, B*cfg.EmbedDim), B, cfg.EmbedDim))
	d := be.Zeros(B, cfg.EmbedDim)
	b.ResetTimer()
	for range b.N {
		tt.ZeroGrad()
		be.Zero(d)
		emb := tt.Forward(ids, B, T)
		ContrastiveLoss(be, img, emb, DefaultLogitScale, nil, d)
		tt.Backward(d)
	}
	b.ReportMetric(float64(b.N*B)/b.Elapsed().Seconds(), "samples/s")
}

func randn(rng *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64())
	}
	return out
}
