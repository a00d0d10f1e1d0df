package backend

import (
	"fmt"
	"math"
)

// Multi-head scaled dot-product attention.
// qkv (B·T, 3C): q, k, v side by side, C = H·D, head h at columns h·D..h·D+D of
// each third. out (B·T, C). probs (B,H,T,T) keeps softmax(q·kᵀ/√D) for backward.
// Work is split over the B·H (batch, head) pairs, which touch disjoint memory.
// From attnGemmMinT tokens on, each pair's products q·kᵀ and p·v (and their
// backward) run through the packed GEMM on strided views of qkv; below it,
// plain loops, which win when the matrices are tiny.

// attnGemmMinT is the sequence length from which attention uses the GEMM.
const attnGemmMinT = 16

// Attention computes out from qkv; causal masks keys after the query.
func (c *CPU) Attention(out, qkv Tensor, B, T, H int, causal bool, probs Tensor) {
	c.attention("Attention", out, qkv, nil, B, T, H, causal, probs)
}

// AttentionBias is Attention (not causal) with an additive bias on the
// scores before the softmax: bias (G,H,T,T), and batch entry b takes
// bias[b mod G] — Swin's relative position bias plus its shifted-window mask,
// G being the windows per image, whose entries lie image by image in qkv.
// The bias is a constant, so AttentionBackward with this op's probs is its
// gradient.
func (c *CPU) AttentionBias(out, qkv, bias Tensor, B, T, H int, probs Tensor) {
	if bias == nil {
		panic("backend: cpu: AttentionBias: nil bias")
	}
	c.attention("AttentionBias", out, qkv, bias, B, T, H, false, probs)
}

// attnBias is an additive score bias (G,H,T,T) shared by batch entries b ≡ g mod G.
type attnBias struct {
	d       []float32
	G, H, T int
}

// row returns the bias row for batch entry b, head h, query i (nil without a bias).
func (ab attnBias) row(b, h, i int) []float32 {
	if ab.d == nil {
		return nil
	}
	return ab.d[(((b%ab.G)*ab.H+h)*ab.T+i)*ab.T:][:ab.T]
}

// attention is Attention with an optional bias (AttentionBias); op names it in panics.
func (c *CPU) attention(op string, out, qkv, bias Tensor, B, T, H int, causal bool, probs Tensor) {
	C, D := attnDims(op, qkv, B, T, H)
	qd, od := data(qkv), data(out)
	checkShape2(op, "out", out, B*T, C)
	var pd []float32
	if probs != nil {
		pd = data(probs)
		mustLen(op, "probs", len(pd), B*H*T*T)
	}
	var ab attnBias
	if bias != nil {
		ab.d, ab.H, ab.T = data(bias), H, T
		if len(ab.d) == 0 || len(ab.d)%(H*T*T) != 0 {
			panic(fmt.Sprintf("backend: cpu: %s: bias %v is not (G,%d,%d,%d)", op, bias.Shape(), H, T, T))
		}
		ab.G = len(ab.d) / (H * T * T)
		if B%ab.G != 0 {
			panic(fmt.Sprintf("backend: cpu: %s: bias groups G=%d do not divide B=%d", op, ab.G, B))
		}
	}
	scale := float32(1 / math.Sqrt(float64(D)))
	if T >= attnGemmMinT {
		c.attentionGemm(od, qd, pd, ab, B, T, H, C, D, causal, scale)
		return
	}
	c.parallel(B*H, T*T*D*4, func(lo, hi int) {
		s := make([]float32, T)
		acc := make([]float32, D)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			for i := 0; i < T; i++ {
				q := qd[(b*T+i)*3*C+h*D:][:D]
				lim := T
				if causal {
					lim = i + 1
				}
				brow := ab.row(b, h, i)
				mx := float32(math.Inf(-1))
				for j := 0; j < lim; j++ {
					k := qd[(b*T+j)*3*C+C+h*D:][:D]
					var dot float32
					for d, v := range q {
						dot += v * k[d]
					}
					dot *= scale
					if brow != nil {
						dot += brow[j]
					}
					s[j] = dot
					mx = max(mx, dot)
				}
				var sum float32
				for j := 0; j < lim; j++ {
					e := expf(s[j] - mx)
					s[j] = e
					sum += e
				}
				inv := 1 / sum
				clear(acc)
				for j := 0; j < lim; j++ {
					p := s[j] * inv
					s[j] = p
					v := qd[(b*T+j)*3*C+2*C+h*D:][:D]
					for d, x := range v {
						acc[d] += p * x
					}
				}
				copy(od[(b*T+i)*C+h*D:][:D], acc)
				if pd != nil {
					row := pd[(bh*T+i)*T:][:T]
					copy(row, s[:lim])
					clear(row[lim:])
				}
			}
		}
	})
}

// AttentionBackward: dqkv (B·T,3C) += gradients from dout (B·T,C). probs may be
// nil, then the softmax is recomputed from qkv.
//
//	dv_j += Σ_i p_ij dout_i;  dp_ij = dout_i·v_j;  ds_ij = p_ij (dp_ij − Σ_j' p_ij' dp_ij')
//	dq_i += scale Σ_j ds_ij k_j;  dk_j += scale Σ_i ds_ij q_i
func (c *CPU) AttentionBackward(dqkv, dout, qkv, probs Tensor, B, T, H int, causal bool) {
	C, D := attnDims("AttentionBackward", qkv, B, T, H)
	checkShape2("AttentionBackward", "dqkv", dqkv, B*T, 3*C)
	checkShape2("AttentionBackward", "dout", dout, B*T, C)
	qd, gd, dd := data(qkv), data(dqkv), data(dout)
	if probs == nil {
		probs = c.Zeros(B, H, T, T)
		defer c.Free(probs)
		out := c.Zeros(B*T, C)
		c.Attention(out, qkv, B, T, H, causal, probs)
		c.Free(out)
	}
	pd := data(probs)
	mustLen("AttentionBackward", "probs", len(pd), B*H*T*T)
	scale := float32(1 / math.Sqrt(float64(D)))
	if T >= attnGemmMinT {
		c.attentionBackwardGemm(gd, dd, qd, pd, B, T, H, C, D, causal, scale)
		return
	}
	c.parallel(B*H, T*T*D*8, func(lo, hi int) {
		ds := make([]float32, T)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			for i := 0; i < T; i++ {
				lim := T
				if causal {
					lim = i + 1
				}
				p := pd[(bh*T+i)*T:][:T]
				do := dd[(b*T+i)*C+h*D:][:D]
				var dot float32
				for j := 0; j < lim; j++ {
					v := qd[(b*T+j)*3*C+2*C+h*D:][:D]
					dv := gd[(b*T+j)*3*C+2*C+h*D:][:D]
					var dp float32
					pj := p[j]
					for d, x := range do {
						dp += x * v[d]
						dv[d] += pj * x
					}
					ds[j] = dp
					dot += pj * dp
				}
				q := qd[(b*T+i)*3*C+h*D:][:D]
				dq := gd[(b*T+i)*3*C+h*D:][:D]
				for j := 0; j < lim; j++ {
					g := p[j] * (ds[j] - dot) * scale
					k := qd[(b*T+j)*3*C+C+h*D:][:D]
					dk := gd[(b*T+j)*3*C+C+h*D:][:D]
					for d := range dq {
						dq[d] += g * k[d]
						dk[d] += g * q[d]
					}
				}
			}
		}
	})
}

func attnDims(op string, qkv Tensor, B, T, H int) (C, D int) {
	n, c3 := rowsCols(qkv)
	if n != B*T || c3%3 != 0 || H <= 0 || (c3/3)%H != 0 {
		panic(fmt.Sprintf("backend: cpu: %s: qkv %v does not fit B=%d T=%d H=%d", op, qkv.Shape(), B, T, H))
	}
	return c3 / 3, c3 / 3 / H
}

// attentionGemm is Attention for T ≥ attnGemmMinT: per (b,h), with q, k, v the
// strided (T,D) views of qkv (row stride 3C),
//
//	s (T,T) = scale·q·kᵀ (+ bias);  p = softmax(s) row-wise, masked;  out (T,D) = p·v
func (c *CPU) attentionGemm(od, qd, pd []float32, ab attnBias, B, T, H, C, D int, causal bool, scale float32) {
	c.parallel(B*H, T*T*D*4, func(lo, hi int) {
		var scratch []float32
		if pd == nil {
			scratch = make([]float32, T*T)
		}
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			base := b * T * 3 * C
			q, k, v := qd[base+h*D:], qd[base+C+h*D:], qd[base+2*C+h*D:]
			p := scratch
			if pd != nil {
				p = pd[bh*T*T : (bh+1)*T*T]
			}
			c.serialGemm(false, true, T, T, D, scale, q, 3*C, k, 3*C, 0, p, T)
			for i := 0; i < T; i++ {
				lim := T
				if causal {
					lim = i + 1
				}
				row := p[i*T : i*T+T]
				if brow := ab.row(b, h, i); brow != nil {
					for j, v := range brow {
						row[j] += v
					}
				}
				softmaxInPlace(row[:lim])
				clear(row[lim:])
			}
			c.serialGemm(false, false, T, D, T, 1, p, T, v, 3*C, 0, od[b*T*C+h*D:], C)
		}
	})
}

// attentionBackwardGemm is AttentionBackward for T ≥ attnGemmMinT: per (b,h),
//
//	dp = dout·vᵀ;  dv += pᵀ·dout;  ds = p∘(dp − rowsum(p∘dp))·scale
//	dq += ds·k;  dk += dsᵀ·q
func (c *CPU) attentionBackwardGemm(gd, dd, qd, pd []float32, B, T, H, C, D int, causal bool, scale float32) {
	c.parallel(B*H, T*T*D*8, func(lo, hi int) {
		ds := make([]float32, T*T)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			base := b * T * 3 * C
			q, k, v := qd[base+h*D:], qd[base+C+h*D:], qd[base+2*C+h*D:]
			dq, dk, dv := gd[base+h*D:], gd[base+C+h*D:], gd[base+2*C+h*D:]
			do := dd[b*T*C+h*D:]
			p := pd[bh*T*T : (bh+1)*T*T]
			c.serialGemm(false, true, T, T, D, 1, do, C, v, 3*C, 0, ds, T)
			c.serialGemm(true, false, T, D, T, 1, p, T, do, C, 1, dv, 3*C)
			for i := 0; i < T; i++ {
				lim := T
				if causal {
					lim = i + 1
				}
				pr, dr := p[i*T:i*T+lim], ds[i*T:i*T+T]
				var dot float32
				for j, x := range pr {
					dot += x * dr[j]
				}
				for j, x := range pr {
					dr[j] = x * (dr[j] - dot) * scale
				}
				clear(dr[lim:])
			}
			c.serialGemm(false, false, T, D, T, 1, ds, T, k, 3*C, 1, dq, 3*C)
			c.serialGemm(true, false, T, D, T, 1, ds, T, q, 3*C, 1, dk, 3*C)
		}
	})
}

// softmaxInPlace replaces row by softmax(row).
func softmaxInPlace(row []float32) {
	mx := float32(math.Inf(-1))
	for _, v := range row {
		mx = max(mx, v)
	}
	expAffine(row, row, 1, -mx)
	var sum float32
	for _, e := range row {
		sum += e
	}
	inv := 1 / sum
	for j := range row {
		row[j] *= inv
	}
}
