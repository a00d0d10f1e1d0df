package clip

import "github.com/litcache/litcache/internal/backend"

// fusedBackend is what a backend offers beyond backend.Backend to fold a
// transformer block's residual adds into neighbouring ops (the CUDA backend:
// the residual read by the GEMM's epilogue, and the positional add fused
// into ln_pre). Inference uses it when the backend has it; results equal
// the plain ops' up to rounding. Training keeps the plain ops (backward
// needs the intermediate tensors).
type fusedBackend interface {
	// LinearResidual: out = x·wᵀ + bias + residual; out may be residual.
	LinearResidual(out, x, w, bias, residual backend.Tensor)
	// AddLayerNorm: sum = x + r[row mod period] (not kept when sum is nil);
	// out = LayerNorm(sum) with gamma, beta, eps. out may be x.
	AddLayerNorm(sum, out, x, r, gamma, beta backend.Tensor, period int, eps float32)
}
