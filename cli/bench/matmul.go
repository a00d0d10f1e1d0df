package bench

import (
	"context"
	"fmt"
	"math/rand"
	"runtime"
	"time"

	"github.com/litcache/litcache/internal/backend"
)

// Matmul times float32 GEMM in the layout of every Linear layer (x·wᵀ) at
// 1024³ and at the four ViT-B/16 layer shapes for 8 images (8·197 = 1576
// rows): litcache's default CPU backend (whatever path it picks), the backend
// forced onto OpenBLAS, its pure-Go GEMM (assembly micro-kernel where the CPU
// has AVX-512 or AVX2+FMA) and that GEMM with the portable Go micro-kernel,
// each against OpenBLAS cblas_sgemm called directly in the same run.
// Without OpenBLAS the reference is the pure-Go figure and a note says so.
var Matmul = Bench{
	Name: "matmul",
	Help: "float32 GEMM GFLOP/s (1024³, ViT-B/16 layers): CPU backend and pure-Go fallback vs OpenBLAS sgemm",
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
	withBLAS := backend.NewCPUWith(backend.CPUOptions{PreferBLAS: true})
	pure := backend.NewCPUWith(backend.CPUOptions{DisableBLAS: true})
	portable := backend.NewCPUWith(backend.CPUOptions{DisableBLAS: true, PortableKernel: true})
	blas, blasErr := backend.OpenBLASSgemm(runtime.GOMAXPROCS(0))
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
		runs := []func(){
			func() { cpu.Linear(ot, xt, wt, nil, backend.ActNone) },
			func() { pure.Linear(op, xp, wp, nil, backend.ActNone) },
			func() { portable.Linear(op, xp, wp, nil, backend.ActNone) },
		}
		if blas != nil {
			runs = append(runs,
				func() { withBLAS.Linear(op, xp, wp, nil, backend.ActNone) },
				func() { blas(false, true, s.m, s.n, s.k, 1, x, s.k, w, s.k, 0, out, s.n) })
		}
		best, err := bestTimes(ctx, runs)
		if err != nil {
			return err
		}
		gflops := func(d time.Duration) float64 {
			return 2 * float64(s.m) * float64(s.n) * float64(s.k) / d.Seconds() / 1e9
		}
		name := "matmul/" + s.name
		goNote := "pure-Go fallback, " + pure.GemmKernel()
		portNote := "pure-Go fallback without assembly, " + portable.GemmKernel()
		if blas != nil {
			ref := gflops(best[4])
			emit(Figure{Name: name + "/openblas", Value: ref, Unit: "GFLOP/s", HigherIsBetter: true, Note: "cblas_sgemm called directly, its own threads"})
			emit(Figure{Name: name + "/litcache", Value: gflops(best[0]), Unit: "GFLOP/s", RefName: "openblas", Ref: ref, HigherIsBetter: true, Note: "default backend: " + cpu.Name()})
			emit(Figure{Name: name + "/litcache-blas", Value: gflops(best[3]), Unit: "GFLOP/s", RefName: "openblas", Ref: ref, HigherIsBetter: true, Note: "backend with PreferBLAS: " + withBLAS.Name()})
			emit(Figure{Name: name + "/go", Value: gflops(best[1]), Unit: "GFLOP/s", RefName: "openblas", Ref: ref, HigherIsBetter: true, Note: goNote})
			emit(Figure{Name: name + "/go-portable", Value: gflops(best[2]), Unit: "GFLOP/s", RefName: "openblas", Ref: ref, HigherIsBetter: true, Note: portNote})
			continue
		}
		ref := gflops(best[1])
		note := fmt.Sprintf("OpenBLAS absent (%v): reference is the pure-Go figure", blasErr)
		emit(Figure{Name: name + "/litcache", Value: gflops(best[0]), Unit: "GFLOP/s", RefName: "go", Ref: ref, HigherIsBetter: true, Note: note})
		emit(Figure{Name: name + "/go", Value: ref, Unit: "GFLOP/s", HigherIsBetter: true, Note: goNote})
		emit(Figure{Name: name + "/go-portable", Value: gflops(best[2]), Unit: "GFLOP/s", RefName: "go", Ref: ref, HigherIsBetter: true, Note: portNote})
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
