package cuda

// The text tower's forward and backward inside a LiT step, as OpenCLIP
// computes it (clip.TextTower is the reference):
//
//	x   = token_embedding[ids] + positional_embedding[:T]
//	x1  = x  + out_proj(attention(in_proj(ln_1(x))))      per block, causal
//	x'  = x1 + c_proj(act(c_fc(ln_2(x1))))
//	emb = ln_final(x[b, eot_b]) · text_projection
//
// Activations are of the backend's precision; statistics float32; every
// weight gradient float32 and accumulated by its GEMM (beta = 1).

// lin: out (M,O) = x (M,I)·w (O,I)ᵀ + bias (+ res, read by the GEMM's
// epilogue, when not 0); outF32 writes float32 whatever the precision.
func (l *LiT) lin(out, x, w, bias, res uintptr, M, O, I int, outF32 bool) {
	g := gemmCall{transB: true, M: M, N: O, K: I, alpha: 1, a: x, lda: I, b: w, ldb: I, c: out, ldc: O, bias: bias, outF32: outF32}
	if res != 0 {
		g.beta, g.res = 1, res
	}
	l.b.gemm(g)
}

// linDX: dx (M,I) = dout (M,O)·w (O,I).
func (l *LiT) linDX(dx, dout, w uintptr, M, O, I int) {
	l.b.gemm(gemmCall{M: M, N: I, K: O, alpha: 1, a: dout, lda: O, b: w, ldb: I, c: dx, ldc: I})
}

// linDW: dw (O,I) += doutᵀ (O,M) · x (M,I), float32.
func (l *LiT) linDW(dw, dout, x uintptr, M, O, I int) {
	l.b.gemm(gemmCall{transA: true, M: O, N: I, K: M, alpha: 1, a: dout, lda: O, b: x, ldb: I, beta: 1, c: dw, ldc: I, outF32: true})
}

// biasGrad: db (C) += Σ rows of dout (R,C), dout of the activation type.
func (l *LiT) biasGrad(db, dout uintptr, R, C int, a *litActs) {
	b := l.b
	must(b.colsum(db, dout, R, C, b.colsumBlocks(R, C), a.part, b.prec == BF16))
}

// layerNorm: out = LayerNorm(x) (N rows of W) with gain and bias t, saving
// mean and rstd when not 0.
func (l *LiT) layerNorm(out, x uintptr, g, bias litTensor, mean, rstd uintptr, N int) {
	b := l.b
	must(b.k.launchLayernorm(b.gridRows(N, l.m.Width), out, x, l.w(g), l.w(bias), mean, rstd, int32(l.m.Width), l.m.Eps))
}

// layerNormBackward: dx += the input gradient; the gain's and bias's accumulate.
func (l *LiT) layerNormBackward(dx, dout, x uintptr, g, bias litTensor, mean, rstd uintptr, N int, a *litActs) {
	b := l.b
	G, threads := b.lnBackwardBlocks(N, l.m.Width)
	must(b.lnBackward(dx, l.g(g), l.g(bias), dout, x, l.w(g), mean, rstd, N, l.m.Width, G, threads, a.part, b.prec == BF16))
}

// textForward runs the tower on the step's captions (io.caps, U of them,
// T tokens from the caption table) and leaves emb (U,E) float32 in a.
func (l *LiT) textForward(a *litActs, caps *DeviceCaptions, capRows uintptr) {
	b, m := l.b, l.m
	U, T, N, W, F, E := a.U, a.T, a.N, m.Width, m.Hidden, m.Embed
	must(b.k.launchLitEmbed(b.gridN(N*W), a.res[0], l.w(l.p.tok), l.w(l.p.pos), caps.ids.Ptr, capRows,
		int32(caps.T), int32(T), int32(W), int64(N*W)))
	for i, ly := range l.p.layers {
		x := a.res[i]
		l.layerNorm(a.ln, x, ly.ln1g, ly.ln1b, a.mean1[i], a.rstd1[i], N)
		l.lin(a.qkv[i], a.ln, l.w(ly.wqkv), l.w(ly.bqkv), 0, N, 3*W, W, false)
		l.attention(a, i)
		l.lin(a.x1[i], a.att[i], l.w(ly.wo), l.w(ly.bo), x, N, W, W, false)
		l.layerNorm(a.ln, a.x1[i], ly.ln2g, ly.ln2b, a.mean2[i], a.rstd2[i], N)
		l.lin(a.fc[i], a.ln, l.w(ly.wfc), l.w(ly.bfc), 0, N, F, W, false)
		must(b.k.launchActivation(b.gridN(N*F), a.fca, a.fc[i], int64(N*F), int32(m.Act)))
		l.lin(a.res[i+1], a.fca, l.w(ly.wproj), l.w(ly.bproj), a.x1[i], N, W, F, false)
	}
	must(b.k.launchLitPoolGather(b.gridN(U*W), a.pooled, a.res[m.Layers], capRows, caps.pool.Ptr, int32(T), int32(W), int64(U*W)))
	l.layerNorm(a.lnf, a.pooled, l.p.lnfg, l.p.lnfb, a.meanF, a.rstdF, U)
	l.lin(a.emb, a.lnf, l.w(l.p.proj), 0, 0, U, E, W, true)
}

// textBackward takes demb16 (U,E), the loss's gradient of emb, and
// accumulates every text parameter's gradient.
func (l *LiT) textBackward(a *litActs, caps *DeviceCaptions, capRows uintptr) {
	b, m := l.b, l.m
	U, T, N, W, F, E := a.U, a.T, a.N, m.Width, m.Hidden, m.Embed
	e := uint64(l.act)
	// emb = lnf · projᵀ
	l.linDX(a.dlnf, a.demb16, l.w(l.p.proj), U, E, W)
	l.linDW(l.g(l.p.proj), a.demb16, a.lnf, U, E, W)
	// lnf = ln_final(pooled)
	must(b.dv.Memset(a.dpool, uint64(U*W)*e))
	l.layerNormBackward(a.dpool, a.dlnf, a.pooled, l.p.lnfg, l.p.lnfb, a.meanF, a.rstdF, U, a)
	// pooled = x_L[eot rows]
	must(b.dv.Memset(a.dres, uint64(N*W)*e))
	must(b.k.launchLitPoolScatter(b.gridN(U*W), a.dres, a.dpool, capRows, caps.pool.Ptr, int32(T), int32(W), int64(U*W)))
	for i := m.Layers - 1; i >= 0; i-- {
		ly := l.p.layers[i]
		// MLP: out = x1 + c_proj(act(c_fc(ln_2(x1)))); dres holds d out
		l.layerNorm(a.ln, a.x1[i], ly.ln2g, ly.ln2b, 0, 0, N)
		must(b.k.launchActivation(b.gridN(N*F), a.fca, a.fc[i], int64(N*F), int32(m.Act)))
		l.linDX(a.dfca, a.dres, l.w(ly.wproj), N, W, F)
		l.linDW(l.g(ly.wproj), a.dres, a.fca, N, W, F)
		l.biasGrad(l.g(ly.bproj), a.dres, N, W, a)
		dfc := a.fca // the post-activation values are no longer needed
		must(b.k.launchLitActBwd(b.gridN(N*F), dfc, a.dfca, a.fc[i], int64(N*F), int32(m.Act)))
		l.linDX(a.dln, dfc, l.w(ly.wfc), N, F, W)
		l.linDW(l.g(ly.wfc), dfc, a.ln, N, F, W)
		l.biasGrad(l.g(ly.bfc), dfc, N, F, a)
		l.layerNormBackward(a.dres, a.dln, a.x1[i], ly.ln2g, ly.ln2b, a.mean2[i], a.rstd2[i], N, a) // dres = d x1
		// attention: x1 = x + out_proj(attention(in_proj(ln_1(x))))
		l.linDX(a.datt, a.dres, l.w(ly.wo), N, W, W)
		l.linDW(l.g(ly.wo), a.dres, a.att[i], N, W, W)
		l.biasGrad(l.g(ly.bo), a.dres, N, W, a)
		l.attentionBackward(a, i)
		l.layerNorm(a.ln, a.res[i], ly.ln1g, ly.ln1b, 0, 0, N)
		l.linDX(a.dln, a.dqkv, l.w(ly.wqkv), N, 3*W, W)
		l.linDW(l.g(ly.wqkv), a.dqkv, a.ln, N, 3*W, W)
		l.biasGrad(l.g(ly.bqkv), a.dqkv, N, 3*W, a)
		l.layerNormBackward(a.dres, a.dln, a.res[i], ly.ln1g, ly.ln1b, a.mean1[i], a.rstd1[i], N, a) // dres = d x
	}
	// x = tok[ids] + pos[:T]: the positional gradient is the column sum of
	// dres as (U, T·W); the token gradient a scatter by id
	l.biasGrad(l.g(l.p.pos), a.dres, U, T*W, a)
	must(b.k.launchLitEmbedBwd(b.gridN(N*W), l.g(l.p.tok), a.dres, caps.ids.Ptr, capRows, caps.pool.Ptr,
		int32(caps.T), int32(T), int32(W), int64(N*W)))
}
