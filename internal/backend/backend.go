// Package backend defines the compute operations the CLIP towers are written
// against (DESIGN.md decision 2). The model code never knows the device: the CPU
// implementation in this package is the float32 reference, the CUDA one in
// cuda/ runs bf16 with float32 accumulation. Every op has the same meaning on
// both, and the parity tests run each op on both with fresh random inputs.
//
// Letters used in shape comments: B batch, T tokens, C channels, H heads,
// N rows (usually B*T), I input features, O output features, K inner dim.
//
// Conventions:
//   - Tensors are row-major; a "matrix" is its shape's last dim as columns and
//     the product of the others as rows.
//   - Forward ops overwrite their output.
//   - Backward ops ACCUMULATE (+=) into every gradient they write, as in llm.c,
//     so that residual streams and shared weights need no extra adds. The
//     caller zeroes gradients before a step. A nil gradient is not computed.
//   - Linear weights are stored as PyTorch nn.Linear does: w (O,I), y = x·wᵀ + b.
package backend

// Act is an activation that Linear applies to its output or Activation
// applies alone. Linear on the pure-Go CPU GEMM applies it to each row block
// as soon as the block is final (still in cache); on OpenBLAS it is a pass
// after the GEMM, and on CUDA a separate kernel.
type Act uint8

const (
	// ActNone is the identity.
	ActNone Act = iota
	// ActGELU is the exact (erf) GELU of torch.nn.GELU.
	ActGELU
	// ActQuickGELU is x·sigmoid(1.702·x), OpenAI CLIP's activation.
	ActQuickGELU
)

// String names the activation as configs spell it.
func (a Act) String() string {
	switch a {
	case ActGELU:
		return "gelu"
	case ActQuickGELU:
		return "quick_gelu"
	default:
		return "none"
	}
}

// Tensor is memory owned by one Backend. Only that backend's ops accept it.
type Tensor interface {
	// Shape is the tensor's dimensions; callers must not modify it.
	Shape() []int
	// Len is the number of elements.
	Len() int
}

// Backend is the set of ops the towers, the loss and the optimizer need.
type Backend interface {
	// Name identifies the backend and its precision, e.g. "cpu/float32 (openblas)".
	Name() string

	// Zeros allocates a zero-filled tensor.
	Zeros(shape ...int) Tensor
	// FromFloat32 allocates a tensor holding a copy of data (len = product of shape).
	FromFloat32(data []float32, shape ...int) Tensor
	// ToFloat32 copies t to host memory, into dst when it is large enough.
	ToFloat32(t Tensor, dst []float32) []float32
	// Reshape returns a tensor sharing t's memory with another shape of equal size.
	Reshape(t Tensor, shape ...int) Tensor
	// Free releases t; using it afterwards is an error. Free(nil) is a no-op.
	Free(t Tensor)
	// Zero sets every element of t to 0.
	Zero(t Tensor)
	// Copy copies src into dst (equal Len).
	Copy(dst, src Tensor)

	// ---- forward ----

	// Linear: out (N,O) = act(x (N,I) · w (O,I)ᵀ + bias (O)). bias may be nil.
	Linear(out, x, w, bias Tensor, act Act)
	// Gemm: c (M,N) = alpha · op(a) · op(b) + beta · c, op = transpose when the flag is set.
	// a is (M,K) or (K,M) when transA; b is (K,N) or (N,K) when transB.
	Gemm(transA, transB bool, alpha float32, a, b Tensor, beta float32, c Tensor)
	// LayerNorm over the last dim: out (N,C) = (x-mean)·rstd·gamma + beta.
	// mean and rstd (N) receive the statistics for the backward pass when not nil.
	LayerNorm(out, x, gamma, beta Tensor, eps float32, mean, rstd Tensor)
	// Attention: multi-head scaled dot-product attention.
	// qkv (B·T, 3C) holds q, k, v side by side (C = H·D each, head h at columns h·D..);
	// out (B·T, C). causal masks keys after the query. probs (B,H,T,T), when not nil,
	// receives the softmax probabilities for the backward pass.
	Attention(out, qkv Tensor, B, T, H int, causal bool, probs Tensor)
	// AttentionBias is Attention without the causal mask and with an additive
	// bias on the scaled scores before the softmax: bias (G,H,T,T) with G
	// dividing B, batch entry b taking bias[b mod G]. Swin's window attention
	// passes its relative position bias plus the shifted-window mask (−100
	// where two tokens come from different regions), G = windows per image.
	// AttentionBackward with this op's probs is its gradient (the bias is constant).
	AttentionBias(out, qkv, bias Tensor, B, T, H int, probs Tensor)
	// SwiGLU: out (N,F) = silu(x[:, :F]) · x[:, F:] for x (N,2F), silu(a) =
	// a·σ(a): the gated FFN of DINOv2's ViT-g (Meta's SwiGLUFFN, w12 then w3).
	SwiGLU(out, x Tensor)
	// Activation: out = act(x), elementwise; out may be x.
	Activation(out, x Tensor, act Act)
	// Add: out = a + b elementwise; out may be a or b.
	Add(out, a, b Tensor)
	// AddPeriodic: out (B·T, C) = x (B·T, C) + p[row mod T] with p (T', C), T ≤ T';
	// adds positional embeddings (only p's first T rows are used). out may be x.
	AddPeriodic(out, x, p Tensor, T int)
	// Embedding: out (N,C) = table[ids[n]] with table (V,C).
	Embedding(out, table Tensor, ids []int32)
	// GatherRows: out (len(rows), C) = x[rows[i]] with x (N,C).
	GatherRows(out, x Tensor, rows []int)
	// L2Normalize: each row of out (N,C) = x row / ‖x row‖₂; out may be x.
	L2Normalize(out, x Tensor)
	// Patchify: im2col for a stride = kernel = P convolution without padding.
	// pixels (B,3,S,S) → out (B·(S/P)², 3·P·P), each row ordered (channel, dy, dx)
	// as a Conv2d weight (O,3,P,P) flattens, patches in row-major grid order.
	Patchify(out, pixels Tensor, B, S, P int)
	// PrependRow: out (B, T+1, C) with out[b,0] = tok (C) and out[b,1:] = x (B,T,C).
	PrependRow(out, x, tok Tensor, B, T int)
	// Scale: t *= alpha.
	Scale(t Tensor, alpha float32)
	// CrossEntropy: row-wise softmax cross-entropy of logits (N,M) against targets,
	// returns the mean loss over rows; when dlogits is not nil it accumulates
	// scale · (softmax − onehot) / N into it.
	CrossEntropy(logits Tensor, targets []int32, dlogits Tensor, scale float32) float32

	// ---- backward (accumulate; nil outputs are skipped) ----

	// LinearBackward for Linear with ActNone: dx (N,I) += dout·w; dw (O,I) += doutᵀ·x; dbias (O) += Σ rows of dout.
	LinearBackward(dx, dw, dbias, dout, x, w Tensor)
	// LayerNormBackward: dx, dgamma, dbeta += from dout, with x, gamma and the saved mean, rstd.
	LayerNormBackward(dx, dgamma, dbeta, dout, x, gamma, mean, rstd Tensor)
	// AttentionBackward: dqkv (B·T,3C) += from dout (B·T,C), with the forward's qkv and probs.
	AttentionBackward(dqkv, dout, qkv, probs Tensor, B, T, H int, causal bool)
	// ActivationBackward: dx += dout · act'(x), x the activation's input.
	ActivationBackward(dx, dout, x Tensor, act Act)
	// AddPeriodicBackward: dp[row mod T] += dout rows (dout (B·T,C), dp (T',C)).
	AddPeriodicBackward(dp, dout Tensor, T int)
	// EmbeddingBackward: dtable[ids[n]] += dout[n].
	EmbeddingBackward(dtable, dout Tensor, ids []int32)
	// GatherRowsBackward: dx[rows[i]] += dout[i].
	GatherRowsBackward(dx, dout Tensor, rows []int)
	// L2NormalizeBackward: dx += Jacobian of row normalisation at x applied to dout.
	L2NormalizeBackward(dx, dout, x Tensor)

	// ---- optimizer ----

	// AdamW: one decoupled-weight-decay Adam step on param with grad and moments m, v
	// (PyTorch's torch.optim.AdamW formula, bias correction with step t ≥ 1):
	// param -= lr·wd·param; m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²;
	// param -= lr · (m/(1-β1^t)) / (sqrt(v/(1-β2^t)) + eps).
	AdamW(param, grad, m, v Tensor, lr, beta1, beta2, eps, wd float32, t int)
	// SumSquares returns Σ t² (for gradient-norm clipping), accumulated in float64.
	SumSquares(t Tensor) float64
}
