package cuda

import (
	"math"

	"github.com/litcache/litcache/internal/backend"
)

// flashHeadDims are the head dimensions attention.cu has a fused kernel for.
var flashHeadDims = map[int]bool{16: true, 32: true, 64: true, 80: true, 96: true, 128: true}

// flashApplies says whether the fused kernel can run this attention: bf16
// storage, a head dim it was built for, rows of qkv and out 16-byte aligned
// (C a multiple of 8 and aligned base pointers).
func (b *Backend) flashApplies(qkv, out backend.Tensor, C, D int) bool {
	return b.prec == BF16 && b.opt.Attention == AttentionAuto && flashHeadDims[D] && C%8 == 0 &&
		ptr(qkv)%16 == 0 && ptr(out)%16 == 0
}

// flashGrid is the fused kernel's launch: 64 query rows per block of 128
// threads; x runs over (batch, head), whose count can pass the 65,535 a grid's
// y allows (a 10,000-caption text batch of 8 heads), y over query tiles.
func flashGrid(B, T, H int) (grid, block Dim3) {
	return Dim3{X: uint32(B * H), Y: uint32((T + 63) / 64)}, Dim3{X: 128}
}

func (b *Backend) flashAttention(out, qkv backend.Tensor, B, T, H, D int, causal bool) {
	grid, block := flashGrid(B, T, H)
	l := launchConfig{grid: grid, block: block, stream: b.dv.Stream}
	scale := float32(math.Log2E / math.Sqrt(float64(D)))
	run := map[int]func(launchConfig, uintptr, uintptr, int32, int32, float32, int32) error{
		16: b.k.launchFlashAttnD16BF16, 32: b.k.launchFlashAttnD32BF16, 64: b.k.launchFlashAttnD64BF16,
		80: b.k.launchFlashAttnD80BF16, 96: b.k.launchFlashAttnD96BF16, 128: b.k.launchFlashAttnD128BF16,
	}[D]
	must(run(l, ptr(out), ptr(qkv), int32(T), int32(H), scale, boolInt(causal)))
}

// padTokens is T rounded up to a multiple of 8: with it as the row pitch of
// every T-long dimension, all leading dimensions and batch strides of the
// attention GEMMs are multiples of 8 elements (16 bytes in bf16, 32 in
// float32), which cuBLASLt's tensor-core kernels need; T = 257 (ViT-L/14)
// would otherwise give odd leading dimensions.
func padTokens(T int) int { return (T + 7) / 8 * 8 }

// gemmAttention is split → QKᵀ → softmax → PV → merge, padded: q, k, v and
// the per-head outputs are (B·H, Tp, D), the scores (B·H, T, Tp) float32 and
// the probabilities (B·H, T, Tp) with zero columns beyond T. A caller's
// probs (B,H,T,T) receive the probabilities unpadded instead (training).
func (b *Backend) gemmAttention(out, qkv, bias backend.Tensor, B, T, H, D int, causal bool, probs backend.Tensor) {
	C := H * D
	BH := B * H
	Tp := padTokens(T)
	n := B * T * C
	q, k, v := b.scratch(BH, Tp, D), b.scratch(BH, Tp, D), b.scratch(BH, Tp, D)
	must(b.k.launchSplitHeads(b.gridN(n), q.buf.Ptr, k.buf.Ptr, v.buf.Ptr, ptr(qkv), int32(B), int32(T), int32(H), int32(D), int32(Tp)))
	scores := b.scratchF32(BH, T, Tp)
	hs, ss := int64(Tp*D), int64(T*Tp) // head and score strides
	b.gemm(gemmCall{transB: true, M: T, N: T, K: D, alpha: 1, a: q.buf.Ptr, lda: D, b: k.buf.Ptr, ldb: D,
		c: scores.buf.Ptr, ldc: Tp, outF32: true, batch: BH, strideA: hs, strideB: hs, strideC: ss})
	pp, ldp, ps := ptr(probs), Tp, ss
	var p *Tensor
	if probs == nil {
		p = b.scratch(BH, T, Tp)
		pp = p.buf.Ptr
	} else {
		ldp, ps = T, int64(T*T)
	}
	scale := float32(1 / math.Sqrt(float64(D)))
	if bias == nil {
		must(b.k.launchAttnSoftmax(b.gridRows(BH*T, T), pp, scores.buf.Ptr, int32(T), int32(Tp), int32(ldp), scale, boolInt(causal)))
	} else {
		G := bias.Len() / (H * T * T)
		must(b.k.launchAttnSoftmaxBias(b.gridRows(BH*T, T), pp, scores.buf.Ptr, ptr(bias), int32(T), int32(Tp), int32(ldp),
			int32(H), int32(G), scale))
	}
	heads := b.scratch(BH, Tp, D)
	b.gemm(gemmCall{M: T, N: D, K: T, alpha: 1, a: pp, lda: ldp, b: v.buf.Ptr, ldb: D, c: heads.buf.Ptr, ldc: D,
		batch: BH, strideA: ps, strideB: hs, strideC: hs})
	must(b.k.launchMergeHeads(b.gridN(n), ptr(out), heads.buf.Ptr, int32(B), int32(T), int32(H), int32(D), int32(Tp)))
	b.free(q, k, v, scores, heads, p)
}
