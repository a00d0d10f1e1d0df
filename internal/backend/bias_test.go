package backend_test

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

// attentionBias64 is AttentionBias in float64: scores scale·q·kᵀ plus
// bias[b mod G] (G,H,T,T), row softmax, times v. Returns out and probs.
func attentionBias64(qkv, bias []float64, B, T, H int) (out, probs []float64) {
	return attentionRef64(qkv, bias, B, T, H, false)
}

// TestAttentionBiasReference checks AttentionBias against float64 on both
// code paths (T = 7 loops, T = 49 GEMM) and with G = 1 and G > 1; the bias
// holds −100 entries as Swin's mask does. A bias taken from the wrong group
// or head, or added after the softmax, is an error of order 1e-1; float32
// rounding gives ~1e-7 (tolerance 1e-5, as for Attention).
func TestAttentionBiasReference(t *testing.T) {
	for _, be := range backends() {
		for _, s := range []struct{ B, T, H, D, G int }{{2, 7, 2, 4, 1}, {6, 7, 3, 8, 3}, {4, 49, 2, 16, 2}} {
			t.Run(fmt.Sprintf("%s/B%d_T%d_H%d_D%d_G%d", be.Name(), s.B, s.T, s.H, s.D, s.G), func(t *testing.T) {
				rng := rand.New(rand.NewSource(9))
				C := s.H * s.D
				qkv := randVec(rng, s.B*s.T, 3*C)
				bias := randVec(rng, s.G, s.H, s.T, s.T)
				for i := range bias.f32 {
					if rng.Intn(4) == 0 {
						bias.f32[i], bias.f64[i] = -100, -100
					}
				}
				out, probs := be.Zeros(s.B*s.T, C), be.Zeros(s.B, s.H, s.T, s.T)
				be.AttentionBias(out, qkv.t(be), bias.t(be), s.B, s.T, s.H, probs)
				wo, wp := attentionBias64(qkv.f64, bias.f64, s.B, s.T, s.H)
				checkClose(t, "out", backend.Data(out), wo, 1e-5)
				checkClose(t, "probs", backend.Data(probs), wp, 1e-5)
			})
		}
	}
}

// TestAttentionBiasZeroIsAttention: a zero bias gives Attention's numbers exactly.
func TestAttentionBiasZeroIsAttention(t *testing.T) {
	be := backend.NewCPU()
	rng := rand.New(rand.NewSource(3))
	for _, T := range []int{5, 20} {
		qkv := randVec(rng, 2*T, 3*16).t(be)
		a, b := be.Zeros(2*T, 16), be.Zeros(2*T, 16)
		be.Attention(a, qkv, 2, T, 2, false, nil)
		be.AttentionBias(b, qkv, be.Zeros(1, 2, T, T), 2, T, 2, nil)
		for i, v := range backend.Data(a) {
			if backend.Data(b)[i] != v {
				t.Fatalf("T=%d: element %d: %g with a zero bias, %g without", T, i, backend.Data(b)[i], v)
			}
		}
	}
}

// TestSwiGLUReference: silu(x1)·x2 against float64; float32 exp (Cephes)
// is within a few ulps, so 1e-6 relative.
func TestSwiGLUReference(t *testing.T) {
	be := backend.NewCPU()
	rng := rand.New(rand.NewSource(4))
	const N, F = 9, 300
	x := randVec(rng, N, 2*F)
	for i := range x.f32 {
		x.f32[i] *= 4
		x.f64[i] = float64(x.f32[i])
	}
	out := be.Zeros(N, F)
	be.SwiGLU(out, x.t(be))
	want := make([]float64, N*F)
	for r := 0; r < N; r++ {
		for c := 0; c < F; c++ {
			a, g := x.f64[r*2*F+c], x.f64[r*2*F+F+c]
			want[r*F+c] = a / (1 + math.Exp(-a)) * g
		}
	}
	checkClose(t, "out", backend.Data(out), want, 1e-6)
}
