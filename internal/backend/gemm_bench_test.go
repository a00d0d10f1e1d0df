package backend_test

import (
	"fmt"
	"math/rand"
	"syscall"
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

// MatmulShapes are the products timed by the benchmarks: 1024³ and the four
// Linear layers of a ViT-B/16 block on a batch of 8 images (8·197 = 1576 rows).
var matmulShapes = []struct {
	name    string
	m, n, k int
}{
	{"1024^3", 1024, 1024, 1024},
	{"vitb16_qkv_1576x768x2304", 1576, 2304, 768},
	{"vitb16_out_1576x768x768", 1576, 768, 768},
	{"vitb16_fc1_1576x768x3072", 1576, 3072, 768},
	{"vitb16_fc2_1576x3072x768", 1576, 768, 3072},
}

// BenchmarkLinear times Linear (x·wᵀ, the layout every layer uses) on each
// GEMM path and reports GFLOP/s.
func BenchmarkLinear(b *testing.B) {
	paths := []*backend.CPU{
		backend.NewCPUWith(backend.CPUOptions{PreferBLAS: true}),
		backend.NewCPUWith(backend.CPUOptions{DisableBLAS: true}),
		backend.NewCPUWith(backend.CPUOptions{DisableBLAS: true, Threads: 1}),
		backend.NewCPUPortable(1),
	}
	rng := rand.New(rand.NewSource(1))
	for _, s := range matmulShapes {
		x := make([]float32, s.m*s.k)
		w := make([]float32, s.n*s.k)
		for i := range x {
			x[i] = rng.Float32()
		}
		for i := range w {
			w[i] = rng.Float32()
		}
		for _, be := range paths {
			name := fmt.Sprintf("%s/%s/%s/threads%d", s.name, be.Name(), be.GemmKernel(), be.Threads())
			b.Run(name, func(b *testing.B) {
				xt, wt, out := be.FromFloat32(x, s.m, s.k), be.FromFloat32(w, s.n, s.k), be.Zeros(s.m, s.n)
				be.Linear(out, xt, wt, nil, backend.ActNone)
				cpu0 := cpuSeconds()
				for b.Loop() {
					be.Linear(out, xt, wt, nil, backend.ActNone)
				}
				flop := 2 * float64(s.m) * float64(s.n) * float64(s.k) * float64(b.N)
				b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				// Per CPU-second: what one core delivers, readable on a busy machine.
				b.ReportMetric(flop/(cpuSeconds()-cpu0)/1e9, "GFLOP/cpu-s")
			})
		}
	}
}

// cpuSeconds is the user+system CPU time of the process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkAttention times Attention (and its backward) at the ViT-B/16 image
// tower's shape (8 images, 197 tokens, 12 heads of 64) and the CLIP text
// tower's (64 captions, 77 tokens, 8 heads of 64, causal).
func BenchmarkAttention(b *testing.B) {
	be := backend.NewCPU()
	rng := rand.New(rand.NewSource(1))
	for _, s := range []struct {
		name        string
		B, T, H, D  int
		causal, bwd bool
	}{
		{"vitb16_fwd", 8, 197, 12, 64, false, false},
		{"text_fwd", 64, 77, 8, 64, true, false},
		{"text_bwd", 64, 77, 8, 64, true, true},
	} {
		C := s.H * s.D
		h := make([]float32, s.B*s.T*3*C)
		for i := range h {
			h[i] = float32(rng.NormFloat64())
		}
		qkv, out, probs := be.FromFloat32(h, s.B*s.T, 3*C), be.Zeros(s.B*s.T, C), be.Zeros(s.B, s.H, s.T, s.T)
		dqkv := be.Zeros(s.B*s.T, 3*C)
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				if s.bwd {
					be.AttentionBackward(dqkv, out, qkv, probs, s.B, s.T, s.H, s.causal)
				} else {
					be.Attention(out, qkv, s.B, s.T, s.H, s.causal, probs)
				}
			}
			flop := 4 * float64(s.B*s.H*s.T*s.T*s.D) * float64(b.N)
			if s.bwd {
				flop *= 2
			}
			b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkViTB16Block runs the ops of one ViT-B/16 residual block (pre-LN,
// 12 heads, MLP 3072, QuickGELU) on 8 images of 197 tokens and reports the
// image tower's rate implied by its 12 blocks (patch embedding and head,
// about 1% of the work, left out).
func BenchmarkViTB16Block(b *testing.B) {
	const B, T, C, H, F = 8, 197, 768, 12, 3072
	for _, be := range []*backend.CPU{backend.NewCPUWith(backend.CPUOptions{PreferBLAS: true}), backend.NewCPUWith(backend.CPUOptions{DisableBLAS: true})} {
		b.Run(be.Name(), func(b *testing.B) {
			rng := rand.New(rand.NewSource(1))
			randT := func(shape ...int) backend.Tensor {
				t := be.Zeros(shape...)
				for i, d := 0, backend.Data(t); i < len(d); i++ {
					d[i] = float32(rng.NormFloat64()) * 0.02
				}
				return t
			}
			x := randT(B*T, C)
			g, bt := randT(C), randT(C)
			wqkv, bqkv, wo, bo := randT(3*C, C), randT(3*C), randT(C, C), randT(C)
			w1, b1, w2, b2 := randT(F, C), randT(F), randT(C, F), randT(C)
			ln, qkv, att, proj := be.Zeros(B*T, C), be.Zeros(B*T, 3*C), be.Zeros(B*T, C), be.Zeros(B*T, C)
			hid := be.Zeros(B*T, F)
			for b.Loop() {
				be.LayerNorm(ln, x, g, bt, 1e-5, nil, nil)
				be.Linear(qkv, ln, wqkv, bqkv, backend.ActNone)
				be.Attention(att, qkv, B, T, H, false, nil)
				be.Linear(proj, att, wo, bo, backend.ActNone)
				be.Add(x, x, proj)
				be.LayerNorm(ln, x, g, bt, 1e-5, nil, nil)
				be.Linear(hid, ln, w1, b1, backend.ActQuickGELU)
				be.Linear(proj, hid, w2, b2, backend.ActNone)
				be.Add(x, x, proj)
			}
			b.ReportMetric(float64(B*b.N)/b.Elapsed().Seconds()/12, "img/s")
		})
	}
}
