package bench

import (
	"context"
	"math/rand"
	"time"

	"github.com/litcache/litcache/internal/backend"
)

// Matmul times float32 GEMM in the layout of every Linear layer (x·wᵀ) at
// 1024³ and at the four ViT-B/16 layer shapes for 8 images (8·197 = 1576
// rows): litcache's default CPU backend (whatever path it picks), the backend
// forced onto OpenBLAS (when it loads), its pure-Go GEMM (assembly
// micro-kernel where the CPU has AVX-512 or AVX2+FMA) and that GEMM with the
// portable Go micro-kernel. Every figure is compared with the same run's
// sgemmRef (OpenBLAS cblas_sgemm called directly, or gonum's pure-Go Sgemm
// where OpenBLAS is absent), all as the fastest of interleaved runs.
var Matmul = Bench{
	Name: "matmul",
	Help: "float32 GEMM GFLOP/s (1024³, ViT-B/16 layers): CPU backend and pure-Go fallback vs OpenBLAS sgemm (gonum sgemm without OpenBLAS)",
	Run:  runMatmul,
}

type matmulShape struct {
	name    string
	m, n, k int // out (m,n) = x (m,k) · w (n,k)ᵀ
}

var matmulShapes = []matmulShape{
	{"1024^3", 1024, 1024, 1024},
	{"vitb16-qkv-1576x768x2304", 1576, 2304, 768},
	{"vitb16-out-1576x768x768", 1576, 768, 768},
	{"vitb16-fc1-1576x768x3072", 1576, 3072, 768},
	{"vitb16-fc2-1576x3072x768", 1576, 768, 3072},
}

func runMatmul(ctx context.Context, emit func(Figure)) error {
	cpu := backend.NewCPU()
	pure := backend.NewCPUWith(backend.CPUOptions{DisableBLAS: true})
	portable := backend.NewCPUWith(backend.CPUOptions{DisableBLAS: true, PortableKernel: true})
	_, blasErr := backend.OpenBLASSgemm(1)
	var withBLAS *backend.CPU
	if blasErr == nil {
		withBLAS = backend.NewCPUWith(backend.CPUOptions{PreferBLAS: true})
	}
	ref := newSgemmRef()
	rng := rand.New(rand.NewSource(1))
	for _, s := range matmulShapes {
		x := make([]float32, s.m*s.k)
		w := make([]float32, s.n*s.k)
		for i := range x {
			x[i] = rng.Float32()*2 - 1
		}
		for i := range w {
			w[i] = rng.Float32()*2 - 1
		}
		out := make([]float32, s.m*s.n)
		xt, wt, ot := cpu.FromFloat32(x, s.m, s.k), cpu.FromFloat32(w, s.n, s.k), cpu.Zeros(s.m, s.n)
		xp, wp, op := pure.FromFloat32(x, s.m, s.k), pure.FromFloat32(w, s.n, s.k), pure.Zeros(s.m, s.n)
		type run struct {
			name, note string
			f          func()
		}
		runs := []run{
			{"litcache", "default backend: " + cpu.Name(), func() { cpu.Linear(ot, xt, wt, nil, backend.ActNone) }},
			{"go", "pure-Go fallback, " + pure.GemmKernel(), func() { pure.Linear(op, xp, wp, nil, backend.ActNone) }},
			{"go-portable", "pure-Go fallback without assembly, " + portable.GemmKernel(), func() { portable.Linear(op, xp, wp, nil, backend.ActNone) }},
		}
		if withBLAS != nil {
			runs = append(runs, run{"litcache-blas", "backend with PreferBLAS: " + withBLAS.Name(), func() { withBLAS.Linear(op, xp, wp, nil, backend.ActNone) }})
		}
		fs := []func(){func() { ref.linear(s.m, s.n, s.k, x, w, out) }}
		for _, r := range runs {
			fs = append(fs, r.f)
		}
		best, err := bestTimes(ctx, fs)
		if err != nil {
			return err
		}
		gflops := func(d time.Duration) float64 {
			return 2 * float64(s.m) * float64(s.n) * float64(s.k) / d.Seconds() / 1e9
		}
		name := "matmul/" + s.name
		refRate := gflops(best[0])
		emit(Figure{Name: name + "/reference", Value: refRate, Unit: "GFLOP/s", HigherIsBetter: true, Note: ref.note})
		for i, r := range runs {
			emit(Figure{Name: name + "/" + r.name, Value: gflops(best[i+1]), Unit: "GFLOP/s", RefName: ref.name, Ref: refRate, HigherIsBetter: true, Note: r.note})
		}
		for _, t := range []backend.Tensor{xt, wt, ot} {
			cpu.Free(t)
		}
		for _, t := range []backend.Tensor{xp, wp, op} {
			pure.Free(t)
		}
	}
	return nil
}

// bestTimes runs each function once to warm up, then in turns (so that load
// from other processes falls on all of them alike) and returns each one's
// fastest run. A function is done after 3 runs and 0.6 s, or after 1.5 s
// whatever its count (the portable kernel takes seconds per run), or 10 runs.
func bestTimes(ctx context.Context, runs []func()) ([]time.Duration, error) {
	best := make([]time.Duration, len(runs))
	total := make([]time.Duration, len(runs))
	count := make([]int, len(runs))
	for _, r := range runs {
		r()
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		active := false
		for i, r := range runs {
			if count[i] >= 10 || total[i] >= 1500*time.Millisecond || (count[i] >= 3 && total[i] >= 600*time.Millisecond) {
				continue
			}
			active = true
			t0 := time.Now()
			r()
			d := time.Since(t0)
			total[i] += d
			count[i]++
			if best[i] == 0 || d < best[i] {
				best[i] = d
			}
		}
		if !active {
			return best, nil
		}
	}
}
