package cuda

import "math"

// Causal self-attention inside a LiT step, on the GEMM path: heads split
// out of qkv, scores = q·kᵀ in float32 by a strided batched GEMM, a causal
// softmax into probs (kept for the backward, of the activation type),
// probs·v, heads merged. Every T-long dimension has the pitch Tp, T
// rounded up to a multiple of 8 (padTokens; T itself for a bucketed step),
// so every leading dimension and stride is 16-byte aligned.

// attention: att[i] (N,W) from qkv[i] (N,3W), probs[i] saved.
func (l *LiT) attention(a *litActs, i int) {
	b := l.b
	U, T, H := a.U, a.T, l.m.Heads
	D := l.m.Width / H
	BH, n, Tp := U*H, a.N*l.m.Width, padTokens(T)
	hs, ss := int64(Tp*D), int64(T*Tp)
	must(b.k.launchSplitHeads(b.gridN(n), a.q, a.k, a.v, a.qkv[i], int32(U), int32(T), int32(H), int32(D), int32(Tp)))
	b.gemm(gemmCall{transB: true, M: T, N: T, K: D, alpha: 1, a: a.q, lda: D, b: a.k, ldb: D,
		c: a.scores, ldc: Tp, outF32: true, batch: BH, strideA: hs, strideB: hs, strideC: ss})
	scale := float32(1 / math.Sqrt(float64(D)))
	must(b.k.launchAttnSoftmax(b.gridRows(BH*T, T), a.probs[i], a.scores, int32(T), int32(Tp), int32(Tp), scale, 1))
	b.gemm(gemmCall{M: T, N: D, K: T, alpha: 1, a: a.probs[i], lda: Tp, b: a.v, ldb: D, c: a.heads, ldc: D,
		batch: BH, strideA: ss, strideB: hs, strideC: hs})
	must(b.k.launchMergeHeads(b.gridN(n), a.att[i], a.heads, int32(U), int32(T), int32(H), int32(D), int32(Tp)))
}

// attentionBackward: dqkv (N,3W) from datt (N,W), qkv[i] and probs[i]:
//
//	dV = Pᵀ·dO   dP = dO·Vᵀ   dS = P∘(dP − Σ P∘dP)·scale   dQ = dS·K   dK = dSᵀ·Q
func (l *LiT) attentionBackward(a *litActs, i int) {
	b := l.b
	U, T, H := a.U, a.T, l.m.Heads
	D := l.m.Width / H
	BH, n, Tp := U*H, a.N*l.m.Width, padTokens(T)
	hs, ss := int64(Tp*D), int64(T*Tp)
	bat := func(g gemmCall, sa, sb, sc int64) gemmCall {
		g.alpha, g.batch, g.strideA, g.strideB, g.strideC = 1, BH, sa, sb, sc
		return g
	}
	must(b.k.launchSplitHeads(b.gridN(n), a.q, a.k, a.v, a.qkv[i], int32(U), int32(T), int32(H), int32(D), int32(Tp)))
	dO := a.heads // its rows T..Tp are never read: every GEMM below stops at T
	must(b.k.launchLitSplitHeads1(b.gridN(n), dO, a.datt, int32(U), int32(T), int32(H), int32(D), int32(Tp)))
	p := a.probs[i]
	b.gemm(bat(gemmCall{transA: true, M: T, N: D, K: T, a: p, lda: Tp, b: dO, ldb: D, c: a.dv, ldc: D}, ss, hs, hs))
	dp := a.scores
	g := bat(gemmCall{transB: true, M: T, N: T, K: D, a: dO, lda: D, b: a.v, ldb: D, c: dp, ldc: Tp}, hs, hs, ss)
	g.outF32 = true
	b.gemm(g)
	scale := float32(1 / math.Sqrt(float64(D)))
	must(b.k.launchLitSoftmaxBwd(b.gridRows(BH*T, T), a.ds, dp, p, int32(T), int32(Tp), scale))
	b.gemm(bat(gemmCall{M: T, N: D, K: T, a: a.ds, lda: Tp, b: a.k, ldb: D, c: a.dq, ldc: D}, ss, hs, hs))
	b.gemm(bat(gemmCall{transA: true, M: T, N: D, K: T, a: a.ds, lda: Tp, b: a.q, ldb: D, c: a.dk, ldc: D}, ss, hs, hs))
	must(b.k.launchLitMergeQKV(b.gridN(n), a.dqkv, a.dq, a.dk, a.dv, int32(U), int32(T), int32(H), int32(D), int32(Tp)))
}
