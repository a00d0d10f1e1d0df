package towers

import (
	"errors"
	"math/rand"
	"os"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/cuda/littest"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
)

// gpu opens a backend or skips (fails under LITCACHE_REQUIRE_GPU=1, as the GPU check runs).
func gpu(tb testing.TB, p cuda.Precision) *cuda.Backend {
	tb.Helper()
	return gpuWith(tb, cuda.Options{Precision: p})
}

func gpuWith(tb testing.TB, opt cuda.Options) *cuda.Backend {
	tb.Helper()
	b, err := cuda.NewBackend(opt)
	if errors.Is(err, cuda.ErrNoDriver) || errors.Is(err, cuda.ErrNoDevice) {
		if os.Getenv("LITCACHE_REQUIRE_GPU") == "1" {
			tb.Fatalf("no CUDA GPU here (LITCACHE_REQUIRE_GPU=1): %v", err)
		}
		tb.Skipf("no CUDA GPU here: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestClipTinyImageEmbeddings runs littest.ClipTinyImage on the GPU (the
// emulator runs the same check in CI).
func TestClipTinyImageEmbeddings(t *testing.T) { littest.ClipTinyImage(t, gpuWith) }

// TestTextGradientsGPUvsCPU runs littest.TextGradients on the GPU.
func TestTextGradientsGPUvsCPU(t *testing.T) { littest.TextGradients(t, gpu(t, cuda.F32)) }

// BenchmarkGEMMBF16 is the ceiling for matrix work: a bf16 8192³ GEMM with
// float32 accumulation through the backend (cuBLASLt). The operands are
// standard normal, as PyTorch's peer draws them (torch.randn): on zeros the
// tensor cores switch less, draw less power and hold higher clocks, so a
// GEMM of zeros runs faster than one of real data and overstates the ceiling.
func BenchmarkGEMMBF16(b *testing.B) {
	const n = 8192
	if gemmOperands == nil {
		be := gpu(b, cuda.BF16)
		rng := rand.New(rand.NewSource(1))
		random := func() backend.Tensor {
			v := make([]float32, n*n)
			for i := range v {
				v[i] = float32(rng.NormFloat64())
			}
			return be.FromFloat32(v, n, n)
		}
		gemmOperands = &gemmSetup{be, random(), random(), be.Zeros(n, n)}
	}
	be, x, y, z := gemmOperands.be, gemmOperands.x, gemmOperands.y, gemmOperands.z
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

// gemmOperands keeps BenchmarkGEMMBF16's random operands between the
// harness's calls (b.N = 1, then the real count).
var gemmOperands *gemmSetup

type gemmSetup struct {
	be      *cuda.Backend
	x, y, z backend.Tensor
}

// vitL14GFLOP is ViT-L/14's multiply-adds ×2 per image at 224 px (BASELINES.md).
const vitL14GFLOP = 162.731511808

// BenchmarkViTL14 is the image tower of the design card: ViT-L/14 at 224,
// OpenAI's shape with QuickGELU as the PyTorch peer runs it, bf16, batch
// 256, random weights, 162.7 GFLOP per image (BASELINES.md) turning
// images/s into TFLOP/s. Sub-benchmarks:
//   - tower: pixels already on the GPU (EncodeTensor): the tower-only figure
//     that issue 10's target (≥ 3,650 img/s, ≥ 0.80 of the GEMM ceiling,
//     ≥ 1.24× torch.compile) is about;
//   - unfused: the same model with the fused epilogues off and the GEMM
//     attention path, the ablation the fusions are measured against;
//   - host-pixels: float32 pixels from host memory each batch (Encode);
//   - tower-gelu: LAION's erf-GELU variant, whose activation the GEMM
//     epilogue computes (QuickGELU needs a pass of its own).
func BenchmarkViTL14(b *testing.B) {
	const B = 256
	S := 224
	px := make([]float32, B*3*S*S)
	rng := rand.New(rand.NewSource(2))
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	// The harness calls each sub-benchmark more than once (b.N = 1, then
	// larger counts): build each backend and its random weights once.
	type setup struct {
		be *cuda.Backend
		m  *clip.Model
		px backend.Tensor
	}
	setups := map[string]*setup{}
	get := func(b *testing.B, model string) *setup {
		if st := setups[model]; st != nil {
			return st
		}
		cfg, ok := clip.Builtin(model)
		if !ok {
			b.Fatalf("no built-in %s", model)
		}
		be := gpu(b, cuda.BF16)
		st := &setup{be: be, m: clip.NewRandomModel(be, cfg, 1), px: be.FromFloat32(px, B, 3, S, S)}
		setups[model] = st
		return st
	}
	run := func(b *testing.B, model string, device, unfused bool) {
		st := get(b, model)
		path := cuda.AttentionAuto
		if unfused {
			path = cuda.AttentionGEMM
		}
		st.be.SetPaths(path, unfused)
		defer st.be.SetPaths(cuda.AttentionAuto, false)
		encode := func() { st.m.Vision.Encode(px, B) }
		if device {
			encode = func() { st.m.Vision.EncodeTensor(st.px, B) }
		}
		encode() // warm-up: kernels, cuBLASLt plans, the memory pool
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			encode()
		}
		ips := float64(B*b.N) / b.Elapsed().Seconds()
		b.ReportMetric(ips, "images/s")
		b.ReportMetric(ips*vitL14GFLOP/1e3, "TFLOP/s")
		b.ReportMetric(float64(st.be.FallbackGEMMs()), "fallback-GEMMs")
	}
	b.Run("tower", func(b *testing.B) { run(b, "ViT-L-14-quickgelu", true, false) })
	b.Run("unfused", func(b *testing.B) { run(b, "ViT-L-14-quickgelu", true, true) })
	b.Run("host-pixels", func(b *testing.B) { run(b, "ViT-L-14-quickgelu", false, false) })
	b.Run("tower-gelu", func(b *testing.B) { run(b, "ViT-L-14", true, false) })
	for _, st := range setups {
		st.be.Free(st.px)
		st.m.Free()
		st.be.Trim()
	}
}

// BenchmarkAttentionViTL14 is one ViT-L/14 attention layer (batch 256, T =
// 257, 16 heads of 64) on the fused kernel against the GEMM path (split,
// QKᵀ, softmax, PV, merge) as its ablation; TFLOP/s counts the 4·T²·C
// multiply-adds ×2 of QKᵀ and PV.
func BenchmarkAttentionViTL14(b *testing.B) {
	const B, T, H, C = 256, 257, 16, 1024
	rng := rand.New(rand.NewSource(3))
	qkv := make([]float32, B*T*3*C)
	for i := range qkv {
		qkv[i] = float32(rng.NormFloat64())
	}
	for _, c := range []struct {
		name string
		path cuda.AttentionPath
	}{{"flash", cuda.AttentionAuto}, {"gemm", cuda.AttentionGEMM}} {
		b.Run(c.name, func(b *testing.B) {
			be := gpuWith(b, cuda.Options{Precision: cuda.BF16, Attention: c.path})
			q, out := be.FromFloat32(qkv, B*T, 3*C), be.Zeros(B*T, C)
			be.Attention(out, q, B, T, H, false, nil)
			if err := be.Sync(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				be.Attention(out, q, B, T, H, false, nil)
			}
			if err := be.Sync(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(4*float64(B)*T*T*C*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
		})
	}
}
