package backend

import (
	"fmt"
	"math"
)

// Multi-head scaled dot-product attention.
// qkv (B·T, 3C): q, k, v side by side, C = H·D, head h at columns h·D..h·D+D of
// each third. out (B·T, C). probs (B,H,T,T) keeps softmax(q·kᵀ/√D) for backward.
// Work is split over the B·H (batch, head) pairs, which touch disjoint memory.

// Attention computes out from qkv; causal masks keys after the query.
func (c *CPU) Attention(out, qkv Tensor, B, T, H int, causal bool, probs Tensor) {
	C, D := attnDims("Attention", qkv, B, T, H)
	qd, od := data(qkv), data(out)
	checkShape2("Attention", "out", out, B*T, C)
	var pd []float32
	if probs != nil {
		pd = data(probs)
		mustLen("Attention", "probs", len(pd), B*H*T*T)
	}
	scale := float32(1 / math.Sqrt(float64(D)))
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
				mx := float32(math.Inf(-1))
				for j := 0; j < lim; j++ {
					k := qd[(b*T+j)*3*C+C+h*D:][:D]
					var dot float32
					for d, v := range q {
						dot += v * k[d]
					}
					dot *= scale
					s[j] = dot
					mx = max(mx, dot)
				}
				var sum float32
				for j := 0; j < lim; j++ {
					e := float32(math.Exp(float64(s[j] - mx)))
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
		c.Attention(c.Zeros(B*T, C), qkv, B, T, H, causal, probs)
	}
	pd := data(probs)
	mustLen("AttentionBackward", "probs", len(pd), B*H*T*T)
	scale := float32(1 / math.Sqrt(float64(D)))
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
