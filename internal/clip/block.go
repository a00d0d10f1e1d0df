package clip

import "github.com/litcache/litcache/internal/backend"

// block is one pre-norm transformer residual block, as OpenCLIP's
// ResidualAttentionBlock computes it:
//
//	x1  = x  + out_proj(attention(in_proj(ln_1(x))))
//	out = x1 + c_proj(act(c_fc(ln_2(x1))))
//
// Shapes: x, x1, out (N,C) with N = B·T; qkv (N,3C); mlp inner (N,F), F = C·mlp_ratio.
type block struct {
	ln1     layerNorm
	inProj  linear // (3C,C): q, k, v stacked along dim 0
	outProj linear // (C,C)
	ln2     layerNorm
	fc      linear // c_fc (F,C)
	proj    linear // c_proj (C,F)
}

func (bl *block) register(ps *paramSet, prefix string, width, hidden int) {
	bl.ln1.register(ps, prefix+".ln_1", width)
	bl.inProj.registerNames(ps, prefix+".attn.in_proj_weight", prefix+".attn.in_proj_bias", 3*width, width)
	bl.outProj.register(ps, prefix+".attn.out_proj", width, width, true)
	bl.ln2.register(ps, prefix+".ln_2", width)
	bl.fc.register(ps, prefix+".mlp.c_fc", hidden, width, true)
	bl.proj.register(ps, prefix+".mlp.c_proj", width, hidden, true)
}

// seqDims are the sequence dimensions a block runs at.
type seqDims struct {
	B, T, H int
	causal  bool
	act     backend.Act
}

// blockActs are the activations one block keeps for its backward pass
// (training). The layer-norm outputs and the post-activation MLP values are
// not kept: backward recomputes them from the saved statistics, which costs
// O(N·C) and saves 6·N·C floats per block.
type blockActs struct {
	mean1, rstd1 backend.Tensor // (N)
	qkv          backend.Tensor // (N,3C)
	probs        backend.Tensor // (B,H,T,T)
	att          backend.Tensor // (N,C) attention output before out_proj
	x1           backend.Tensor // (N,C) residual stream after attention
	mean2, rstd2 backend.Tensor // (N)
	fc           backend.Tensor // (N,F) c_fc output before the activation
}

// allocFunc returns a tensor of shape: be.Zeros, or a view of a workspace.
type allocFunc func(shape ...int) backend.Tensor

func newBlockActs(alloc allocFunc, d seqDims, C, F int) *blockActs {
	N := d.B * d.T
	a := &blockActs{}
	a.mean1, a.rstd1 = alloc(N), alloc(N)
	a.qkv = alloc(N, 3*C)
	a.probs = alloc(d.B, d.H, d.T, d.T)
	a.att = alloc(N, C)
	a.x1 = alloc(N, C)
	a.mean2, a.rstd2 = alloc(N), alloc(N)
	a.fc = alloc(N, F)
	return a
}

func (a *blockActs) free(be backend.Backend) {
	for _, t := range []backend.Tensor{a.mean1, a.rstd1, a.qkv, a.probs, a.att, a.x1, a.mean2, a.rstd2, a.fc} {
		be.Free(t)
	}
}

// blockScratch is memory shared by all blocks of a tower for one batch shape.
// Inference uses ln, qkv, att, x1, fca; training's forward uses ln and fca,
// its backward everything from ln on.
type blockScratch struct {
	ln   backend.Tensor // (N,C) layer-norm output
	qkv  backend.Tensor // (N,3C) inference only
	att  backend.Tensor // (N,C)  inference only
	x1   backend.Tensor // (N,C)  inference only
	fca  backend.Tensor // (N,F)  post-activation MLP values; in backward reused as dfc
	dfca backend.Tensor // (N,F)
	dln  backend.Tensor // (N,C)
	datt backend.Tensor // (N,C)
	dqkv backend.Tensor // (N,3C)
}

func newBlockScratch(alloc allocFunc, N, C, F int, training bool) *blockScratch {
	s := &blockScratch{}
	s.ln, s.fca = alloc(N, C), alloc(N, F)
	if training {
		s.dfca, s.dln, s.datt, s.dqkv = alloc(N, F), alloc(N, C), alloc(N, C), alloc(N, 3*C)
	} else {
		s.qkv, s.att, s.x1 = alloc(N, 3*C), alloc(N, C), alloc(N, C)
	}
	return s
}

func (s *blockScratch) free(be backend.Backend) {
	for _, t := range []backend.Tensor{s.ln, s.qkv, s.att, s.x1, s.fca, s.dfca, s.dln, s.datt, s.dqkv} {
		be.Free(t)
	}
}

// forward: out (N,C) = block(x (N,C)). With a == nil it runs for inference on
// the scratch tensors (out may be x); with a != nil it keeps a's activations
// for backward (out must not be x, which backward needs).
func (bl *block) forward(be backend.Backend, out, x backend.Tensor, a *blockActs, s *blockScratch, d seqDims) {
	if a == nil {
		f, fused := be.(fusedBackend)
		bl.ln1.forward(be, s.ln, x, nil, nil)
		bl.inProj.forward(be, s.qkv, s.ln, backend.ActNone)
		be.Attention(s.att, s.qkv, d.B, d.T, d.H, d.causal, nil)
		if fused {
			f.LinearResidual(s.x1, s.att, bl.outProj.w, bl.outProj.b, x)
		} else {
			bl.outProj.forward(be, s.x1, s.att, backend.ActNone)
			be.Add(s.x1, s.x1, x)
		}
		bl.ln2.forward(be, s.ln, s.x1, nil, nil)
		// The activation inside Linear: the pure-Go CPU GEMM applies it to each
		// row block while the block is in cache; OpenBLAS applies it in a pass
		// after the GEMM; CUDA in bf16 takes GELU into the cuBLASLt epilogue
		// (its tanh form, at most 4.7e-4 from the erf form this model asks
		// for) and runs QuickGELU, and float32's GELU, as a pass after it.
		bl.fc.forward(be, s.fca, s.ln, d.act)
		if fused {
			f.LinearResidual(out, s.fca, bl.proj.w, bl.proj.b, s.x1)
		} else {
			bl.proj.forward(be, out, s.fca, backend.ActNone)
			be.Add(out, out, s.x1)
		}
		return
	}
	bl.ln1.forward(be, s.ln, x, a.mean1, a.rstd1)
	bl.inProj.forward(be, a.qkv, s.ln, backend.ActNone)
	be.Attention(a.att, a.qkv, d.B, d.T, d.H, d.causal, a.probs)
	bl.outProj.forward(be, a.x1, a.att, backend.ActNone)
	be.Add(a.x1, a.x1, x)
	bl.ln2.forward(be, s.ln, a.x1, a.mean2, a.rstd2)
	bl.fc.forward(be, a.fc, s.ln, backend.ActNone)
	be.Activation(s.fca, a.fc, d.act)
	bl.proj.forward(be, out, s.fca, backend.ActNone)
	be.Add(out, out, a.x1)
}

// backward: on entry dres (N,C) holds the gradient of the block's output, on
// return the gradient of its input x (the residual paths add in place).
// Every parameter gradient accumulates.
func (bl *block) backward(be backend.Backend, dres, x backend.Tensor, a *blockActs, s *blockScratch, d seqDims) {
	// MLP branch: out = x1 + c_proj(act(c_fc(ln_2(x1)))).
	bl.ln2.forward(be, s.ln, a.x1, nil, nil) // recompute ln_2(x1)
	be.Activation(s.fca, a.fc, d.act)        // recompute act(c_fc(.))
	be.Zero(s.dfca)
	bl.proj.backward(be, s.dfca, dres, s.fca)
	dfc := s.fca // its values are no longer needed
	be.Zero(dfc)
	be.ActivationBackward(dfc, s.dfca, a.fc, d.act)
	be.Zero(s.dln)
	bl.fc.backward(be, s.dln, dfc, s.ln)
	bl.ln2.backward(be, dres, s.dln, a.x1, a.mean2, a.rstd2) // dres = d x1

	// Attention branch: x1 = x + out_proj(attention(in_proj(ln_1(x)))).
	be.Zero(s.datt)
	bl.outProj.backward(be, s.datt, dres, a.att)
	be.Zero(s.dqkv)
	be.AttentionBackward(s.dqkv, s.datt, a.qkv, a.probs, d.B, d.T, d.H, d.causal)
	bl.ln1.forward(be, s.ln, x, nil, nil) // recompute ln_1(x)
	be.Zero(s.dln)
	bl.inProj.backward(be, s.dln, s.dqkv, s.ln)
	bl.ln1.backward(be, dres, s.dln, x, a.mean1, a.rstd1) // dres = d x
}
