package littest

import (
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/backend/backendtest"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/testutil"
)

// Opener opens a CUDA backend with opt for a test: the emulator's
// (emu.Open) or a real GPU's (cuda/towers).
type Opener func(tb testing.TB, opt cuda.Options) *cuda.Backend

// ClipTinyImage runs the clip-tiny fixture's image tower on backends from
// open — fused attention, the residual GEMM epilogue, add+LayerNorm and the
// bf16 GELU epilogue included, then with the fused epilogues off (Unfused,
// the GEMM attention path) — against HF transformers' float64 embeddings:
// bf16 within 2e-2 (the fixture README's bound for bf16 on a GPU), float32
// within 1e-4 (a different summation order than the CPU's 1e-5).
func ClipTinyImage(t *testing.T, open Opener) {
	dir := testutil.FixtureDir(t)
	cfg, err := clip.LoadConfig(filepath.Join(dir, "open_clip_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := safetensors.Open(filepath.Join(dir, "forward.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	pixels, ps, err := fwd.Float32("pixel_values")
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := fwd.Float64("image_embeds")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opt  cuda.Options
		tol  float64
	}{
		{"bf16", cuda.Options{Precision: cuda.BF16}, 2e-2},
		{"bf16-unfused", cuda.Options{Precision: cuda.BF16, Unfused: true, Attention: cuda.AttentionGEMM}, 2e-2},
		{"float32", cuda.Options{Precision: cuda.F32}, 1e-4},
	} {
		t.Run(c.name, func(t *testing.T) {
			be := open(t, c.opt)
			m, err := clip.LoadModel(be, cfg, filepath.Join(dir, "weights_openclip.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			got := m.Vision.Encode(pixels, ps[0])
			if e := relErr64(got, want); !(e <= c.tol) {
				t.Fatalf("image_embeds on %s: relative error %.3g > %g", be.Name(), e, c.tol)
			} else {
				t.Logf("image_embeds on %s: relative error %.3g", be.Name(), e)
			}
		})
	}
}

// TextGradients runs one forward+backward of the clip-tiny text tower with
// the contrastive loss on g (float32) and on the CPU: every parameter
// gradient within 1e-4 relative (float32 on both, with different reduction
// orders and the GPU's atomics).
func TextGradients(t *testing.T, g backend.Backend) {
	dir := testutil.FixtureDir(t)
	cfg, err := clip.LoadConfig(filepath.Join(dir, "open_clip_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(dir, "weights_openclip.safetensors")
	B, T, E := 8, cfg.Text.ContextLength, cfg.EmbedDim
	rng := rand.New(rand.NewSource(1))
	ids := make([]int32, B*T)
	for b := 0; b < B; b++ {
		n := 2 + rng.Intn(T-2)
		ids[b*T] = int32(cfg.Text.VocabSize - 2)
		for i := 1; i < n; i++ {
			ids[b*T+i] = int32(rng.Intn(cfg.Text.VocabSize - 2))
		}
		ids[b*T+n] = int32(cfg.Text.VocabSize - 1)
	}
	img := make([]float32, B*E)
	for i := range img {
		img[i] = float32(rng.NormFloat64())
	}
	grads := map[string][]float32{}
	for _, be := range []backend.Backend{backend.NewCPU(), g} {
		tt, err := clip.LoadTextTower(be, cfg, weights)
		if err != nil {
			t.Fatal(err)
		}
		tt.ZeroGrad()
		emb := tt.Forward(ids, B, T)
		imgT := be.FromFloat32(img, B, E)
		be.L2Normalize(imgT, imgT)
		dText := be.Zeros(B, E)
		clip.ContrastiveLoss(be, imgT, emb, float32(math.Log(1/0.07)), nil, dText)
		tt.Backward(dText)
		for _, p := range tt.Params() {
			got := be.ToFloat32(p.Grad, nil)
			if ref, ok := grads[p.Name]; ok {
				if e, _ := backendtest.RelErr(got, ref); !(e <= 1e-4) {
					t.Errorf("%s: %s vs CPU gradient relative error %.3g > 1e-4", p.Name, g.Name(), e)
				}
			} else {
				grads[p.Name] = got
			}
		}
	}
}

// relErr64 is ‖got−want‖/‖want‖ against a float64 reference.
func relErr64(got []float32, want []float64) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	return math.Sqrt(num / den)
}
