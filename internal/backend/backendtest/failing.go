package backendtest

import "github.com/litcache/litcache/internal/backend"

// Failing is a backend whose op Op (Linear, Gemm, LayerNorm or Attention)
// panics with Err, as the CUDA backend reports a device failure inside an
// op (the interface has no error returns): the stages' tests check that
// such a panic becomes an error naming the op, not a crash. Every other op
// is the wrapped backend's.
type Failing struct {
	backend.Backend
	Op  string
	Err error
}

func (f *Failing) fail(op string) {
	if f.Op == op {
		panic(f.Err)
	}
}

// Linear fails when Op is "Linear".
func (f *Failing) Linear(out, x, w, bias backend.Tensor, act backend.Act) {
	f.fail("Linear")
	f.Backend.Linear(out, x, w, bias, act)
}

// Gemm fails when Op is "Gemm".
func (f *Failing) Gemm(transA, transB bool, alpha float32, a, b backend.Tensor, beta float32, c backend.Tensor) {
	f.fail("Gemm")
	f.Backend.Gemm(transA, transB, alpha, a, b, beta, c)
}

// LayerNorm fails when Op is "LayerNorm".
func (f *Failing) LayerNorm(out, x, gamma, beta backend.Tensor, eps float32, mean, rstd backend.Tensor) {
	f.fail("LayerNorm")
	f.Backend.LayerNorm(out, x, gamma, beta, eps, mean, rstd)
}

// Attention fails when Op is "Attention".
func (f *Failing) Attention(out, qkv backend.Tensor, B, T, H int, causal bool, probs backend.Tensor) {
	f.fail("Attention")
	f.Backend.Attention(out, qkv, B, T, H, causal, probs)
}
