package cuda

import (
	"fmt"
	"math"
	"math/rand"

	"github.com/litcache/litcache/internal/backend"
)

// SelfCheck runs a small Linear, LayerNorm and causal attention on b and on
// the CPU reference and compares them. `--device auto` uses the GPU only when
// this passes, so a broken driver, library or kernel build falls back to the
// CPU instead of producing wrong embeddings.
func SelfCheck(b *Backend) (err error) {
	defer Recover(&err)
	cpu := backend.NewCPU()
	rng := rand.New(rand.NewSource(7))
	randn := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	const B, T, H, C = 2, 9, 2, 32
	x, w, bias := randn(B*T*C), randn(3*C*C), randn(3*C)
	g, beta := randn(C), randn(C)
	run := func(be backend.Backend) []float32 {
		xt, wt, bt := be.FromFloat32(x, B*T, C), be.FromFloat32(w, 3*C, C), be.FromFloat32(bias, 3*C)
		gt, btt := be.FromFloat32(g, C), be.FromFloat32(beta, C)
		ln, qkv, out := be.Zeros(B*T, C), be.Zeros(B*T, 3*C), be.Zeros(B*T, C)
		be.LayerNorm(ln, xt, gt, btt, 1e-5, nil, nil)
		be.Linear(qkv, ln, wt, bt, backend.ActNone)
		be.Attention(out, qkv, B, T, H, true, nil)
		r := be.ToFloat32(out, nil)
		for _, t := range []backend.Tensor{xt, wt, bt, gt, btt, ln, qkv, out} {
			be.Free(t)
		}
		return r
	}
	ref, got := run(cpu), run(b)
	var num, den float64
	for i := range ref {
		d := float64(got[i] - ref[i])
		num += d * d
		den += float64(ref[i]) * float64(ref[i])
	}
	rel := math.Sqrt(num / den)
	tol := 1e-4
	if b.prec == BF16 {
		tol = 3e-2 // bf16 rounding through three ops
	}
	if !(rel <= tol) {
		return fmt.Errorf("cuda: self-check on %s: relative error %.3g against the CPU (limit %g)", b.Name(), rel, tol)
	}
	return nil
}
