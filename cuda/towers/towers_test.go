package towers

import (
	"errors"
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/testutil"
)

func gpu(tb testing.TB, p cuda.Precision) *cuda.Backend {
	tb.Helper()
	b, err := cuda.NewBackend(cuda.Options{Precision: p})
	if errors.Is(err, cuda.ErrNoDriver) || errors.Is(err, cuda.ErrNoDevice) {
		tb.Skipf("no CUDA GPU here: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func relErr(got []float32, want []float64) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	return math.Sqrt(num / den)
}

// TestClipTinyImageEmbeddings runs the fixture's image tower on the GPU and
// compares with HF transformers' float64 embeddings. bf16: within 2e-2
// relative (the fixture README's bound for bf16 on a GPU); float32: 1e-4
// (float32 with a different summation order than the CPU's 1e-5).
func TestClipTinyImageEmbeddings(t *testing.T) {
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
		p   cuda.Precision
		tol float64
	}{{cuda.BF16, 2e-2}, {cuda.F32, 1e-4}} {
		t.Run(c.p.String(), func(t *testing.T) {
			be := gpu(t, c.p)
			m, err := clip.LoadModel(be, cfg, filepath.Join(dir, "weights_openclip.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			got := m.Vision.Encode(pixels, ps[0])
			if e := relErr(got, want); !(e <= c.tol) {
				t.Fatalf("image_embeds on %s: relative error %.3g > %g", be.Name(), e, c.tol)
			} else {
				t.Logf("image_embeds on %s: relative error %.3g", be.Name(), e)
			}
		})
	}
}

// TestTextGradientsGPUvsCPU: one forward+backward of the clip-tiny text tower
// with the contrastive loss on the GPU (float32) and on the CPU; every
// parameter gradient within 1e-4 relative (float32 on both, different
// reduction orders and atomics on the GPU).
func TestTextGradientsGPUvsCPU(t *testing.T) {
	g := gpu(t, cuda.F32)
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
				w := make([]float64, len(ref))
				for i, v := range ref {
					w[i] = float64(v)
				}
				if e := relErr(got, w); !(e <= 1e-4) {
					t.Errorf("%s: GPU vs CPU gradient relative error %.3g > 1e-4", p.Name, e)
				}
			} else {
				grads[p.Name] = got
			}
		}
	}
}

// BenchmarkGEMMBF16 is the ceiling for matrix work: a bf16 8192³ GEMM with
// float32 accumulation through the backend (cuBLASLt). The operands are
// standard normal, as PyTorch's peer draws them (torch.randn): on zeros the
// tensor cores switch less, draw less power and hold higher clocks, so a
// GEMM of zeros runs faster than one of real data and overstates the ceiling.
func BenchmarkGEMMBF16(b *testing.B) {
	be := gpu(b, cuda.BF16)
	const n = 8192
	rng := rand.New(rand.NewSource(1))
	random := func() backend.Tensor {
		v := make([]float32, n*n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return be.FromFloat32(v, n, n)
	}
	x, y, z := random(), random(), be.Zeros(n, n)
	be.Gemm(false, false, 1, x, y, 0, z)
	if err := be.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		be.Gemm(false, false, 1, x, y, 0, z)
	}
	if err := be.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(2*n*n*n*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
}

// BenchmarkViTL14 is the image tower of the design card: ViT-L/14 at 224, bf16,
// batch 256, from preprocessed pixels (host float32, uploaded each batch).
// 162.7 GFLOP per image (BASELINES.md) turns images/s into TFLOP/s.
func BenchmarkViTL14(b *testing.B) {
	be := gpu(b, cuda.BF16)
	cfg, ok := clip.Builtin("ViT-L-14")
	if !ok {
		b.Fatal("no built-in ViT-L-14")
	}
	m := clip.NewRandomModel(be, cfg, 1)
	const B = 256
	S := cfg.Vision.ImageSize
	px := make([]float32, B*3*S*S)
	rng := rand.New(rand.NewSource(2))
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	m.Vision.Encode(px, B) // warm-up: kernels, cuBLASLt plans, the memory pool
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Vision.Encode(px, B)
	}
	ips := float64(B*b.N) / b.Elapsed().Seconds()
	b.ReportMetric(ips, "images/s")
	b.ReportMetric(ips*162.731511808e9/1e12, "TFLOP/s")
}
