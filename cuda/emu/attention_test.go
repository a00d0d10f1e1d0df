package emu_test

import (
	"math/rand"
	"os"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/backend/backendtest"
)

// attention runs one Attention on be with qkv from seed and returns out.
func attention(be backend.Backend, qkv []float32, B, T, H, C int, causal bool) []float32 {
	q := be.FromFloat32(qkv, B*T, 3*C)
	out := be.Zeros(B*T, C)
	be.Attention(out, q, B, T, H, causal, nil)
	r := be.ToFloat32(out, nil)
	be.Free(q)
	be.Free(out)
	return r
}

func randn(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * scale)
	}
	return v
}

// TestFlashAttention runs the fused kernel on the emulator at each head
// dimension it is built for and at ViT-L/14's token count, with tails (T
// not a multiple of the 64-row tiles, T = 1) and causal masks, against the
// CPU's float32 attention. bf16 q, k, v and P: 2e-2 as the other bf16 ops
// (measured 1.5e-3–5.6e-3 here; inputs scaled ×2 to make the softmax peaky,
// where an indexing slip shows). Broken on purpose by reading QKᵀ's B
// fragment from key row (g+1) mod 8: relative error 1.4.
func TestFlashAttention(t *testing.T) {
	g := open(t, cuda.Options{Precision: cuda.BF16})
	cpu := backend.NewCPU()
	rng := rand.New(rand.NewSource(3))
	for _, c := range []struct{ B, T, H, D int }{
		{2, 257, 2, 64}, {1, 65, 2, 16}, {1, 33, 1, 32}, {1, 70, 1, 80}, {1, 40, 1, 96}, {1, 50, 1, 128}, {2, 1, 2, 64},
	} {
		for _, causal := range []bool{false, true} {
			C := c.H * c.D
			qkv := randn(rng, c.B*c.T*3*C, 2)
			want := attention(cpu, qkv, c.B, c.T, c.H, C, causal)
			got := attention(g, qkv, c.B, c.T, c.H, C, causal)
			e, worst := backendtest.RelErr(got, want)
			t.Logf("B=%d T=%d H=%d D=%d causal=%v: relative error %.3g", c.B, c.T, c.H, c.D, causal, e)
			if !(e <= 2e-2) {
				t.Errorf("B=%d T=%d H=%d D=%d causal=%v: relative error %.3g > 2e-2 (worst at %d: %g vs %g)",
					c.B, c.T, c.H, c.D, causal, e, worst, got[worst], want[worst])
			}
		}
	}
	if n := g.FallbackGEMMs(); n != 0 {
		t.Errorf("%d GEMMs fell back", n)
	}
}

// TestGEMMAttentionAligned: the unfused path at T = 257 with the emulated
// cuBLASLt refusing every leading dimension or stride that is not 16-byte
// aligned (as tensor-core kernels need). Padding T to 264 keeps every
// attention GEMM on cuBLASLt; without it (padTokens returning T) both
// GEMMs of both passes fall back, 4 per precision, and this test fails.
func TestGEMMAttentionAligned(t *testing.T) {
	os.Setenv("LITCACHE_EMU_STRICT", "1")
	defer os.Unsetenv("LITCACHE_EMU_STRICT")
	for _, p := range []cuda.Precision{cuda.BF16, cuda.F32} {
		g := open(t, cuda.Options{Precision: p, Attention: cuda.AttentionGEMM})
		rng := rand.New(rand.NewSource(4))
		const B, T, H, D = 2, 257, 2, 64
		qkv := randn(rng, B*T*3*H*D, 1)
		for _, causal := range []bool{false, true} {
			want := attention(backend.NewCPU(), qkv, B, T, H, H*D, causal)
			got := attention(g, qkv, B, T, H, H*D, causal)
			tol := 2e-2
			if p == cuda.F32 {
				tol = 1e-4
			}
			if e, _ := backendtest.RelErr(got, want); !(e <= tol) {
				t.Errorf("%v causal=%v: relative error %.3g > %g", p, causal, e, tol)
			}
		}
		if n := g.FallbackGEMMs(); n != 0 {
			t.Errorf("%v: %d attention GEMMs fell back to the backend's kernel: strides not aligned", p, n)
		}
	}
}

// TestFallbackGEMM: with the emulated cuBLASLt offering no algorithm at
// all, every op still runs (gemm.cu's kernel) and matches the CPU: the
// parity suite at its usual tolerances, never a panic.
func TestFallbackGEMM(t *testing.T) {
	os.Setenv("LITCACHE_EMU_NO_ALGO", "1")
	defer os.Unsetenv("LITCACHE_EMU_NO_ALGO")
	f := open(t, cuda.Options{Precision: cuda.F32})
	backendtest.ParityWith(t, backend.NewCPU(), f, backendtest.Options{Tol: 1e-4})
	b := open(t, cuda.Options{Precision: cuda.BF16})
	backendtest.ParityWith(t, backend.NewCPU(), b, backendtest.Options{Tol: 2e-2, Skip: backendtest.BackwardOps})
	if f.FallbackGEMMs() == 0 || b.FallbackGEMMs() == 0 {
		t.Fatalf("fallbacks: %d, %d: the knob did not take", f.FallbackGEMMs(), b.FallbackGEMMs())
	}
}

// TestSelfCheckEmulated: both self-check cases pass on the emulated GPU in
// both precisions; the per-output errors are logged (the measured values
// behind SelfCheck's limits).
func TestSelfCheckEmulated(t *testing.T) {
	if testing.Short() {
		t.Skip("ViT-L-sized GEMMs on the emulator")
	}
	for _, p := range []cuda.Precision{cuda.BF16, cuda.F32} {
		g := open(t, cuda.Options{Precision: p})
		res, err := cuda.SelfCheckResults(g)
		for _, r := range res {
			t.Logf("%v %s", p, r)
		}
		if err != nil {
			t.Error(err)
		}
	}
}
