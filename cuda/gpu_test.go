package cuda

import (
	"math/rand"
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

// TestSelfCheckOnGPU runs both self-check cases (the small one and ViT-L/14's
// shapes) in both precisions on the GPU and logs every output's error.
func TestSelfCheckOnGPU(t *testing.T) {
	for _, p := range []Precision{BF16, F32} {
		g := gpuBackend(t, p)
		res, err := SelfCheckResults(g)
		for _, r := range res {
			t.Logf("%v %s", p, r)
		}
		if err != nil {
			t.Error(err)
		}
		if n := g.FallbackGEMMs(); n != 0 {
			t.Errorf("%v: %d GEMMs had no cuBLASLt algorithm", p, n)
		}
	}
}

func attentionOn(be backend.Backend, qkv []float32, B, T, H, C int, causal bool) []float32 {
	q := be.FromFloat32(qkv, B*T, 3*C)
	out := be.Zeros(B*T, C)
	be.Attention(out, q, B, T, H, causal, nil)
	r := be.ToFloat32(out, nil)
	be.Free(q)
	be.Free(out)
	return r
}

// TestAttentionOnGPU: the fused kernel at every head dim it has, at ViT-L/14's
// T = 257 and at tails, causal and not, and the padded GEMM path at T = 257,
// against the CPU's float32 attention; 2e-2 (bf16; the emulator measures
// 2–6e-3). No GEMM may fall back to the backend's kernel (an unaligned
// stride cuBLASLt declines would show here).
func TestAttentionOnGPU(t *testing.T) {
	cpu := backend.NewCPU()
	for _, path := range []AttentionPath{AttentionAuto, AttentionGEMM} {
		g := gpuBackendWith(t, Options{Precision: BF16, Attention: path})
		rng := rand.New(rand.NewSource(3))
		for _, c := range []struct{ B, T, H, D int }{
			{4, 257, 16, 64}, {2, 65, 4, 16}, {2, 33, 2, 32}, {2, 70, 2, 80}, {2, 40, 2, 96}, {2, 50, 2, 128}, {2, 1, 2, 64},
		} {
			for _, causal := range []bool{false, true} {
				C := c.H * c.D
				qkv := randn(rng, c.B*c.T*3*C, 2)
				e := relErr(attentionOn(g, qkv, c.B, c.T, c.H, C, causal), attentionOn(cpu, qkv, c.B, c.T, c.H, C, causal))
				t.Logf("path %d B=%d T=%d H=%d D=%d causal=%v: relative error %.3g", path, c.B, c.T, c.H, c.D, causal, e)
				if !(e <= 2e-2) {
					t.Errorf("path %d B=%d T=%d H=%d D=%d causal=%v: relative error %.3g > 2e-2", path, c.B, c.T, c.H, c.D, causal, e)
				}
			}
		}
		if n := g.FallbackGEMMs(); n != 0 {
			t.Errorf("path %d: %d attention GEMMs had no cuBLASLt algorithm", path, n)
		}
	}
}
