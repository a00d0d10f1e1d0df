package swin

import (
	"fmt"

	"github.com/litcache/litcache/internal/backend"
)

// Encode runs the tower on pixels (B,3,S,S) at ImageSize, normalised by
// Preprocessor, and returns the embeddings (B, Dim): the tokens after the
// final norm averaged per image (norm, permute, AdaptiveAvgPool2d(1), flatten).
func (m *Model) Encode(pixels []float32, B int) []float32 {
	x, s := m.forward(pixels, B, nil)
	defer m.be.Free(x)
	return m.pool(x, B, s)
}

// EncodeTensor is Encode on pixels already on the model's backend, (B,3,S,S)
// at ImageSize and normalised — by the GPU's image uploader, say. px stays
// the caller's.
func (m *Model) EncodeTensor(px backend.Tensor, B int) []float32 {
	S := m.cfg.ImageSize
	if B <= 0 || px.Len() != B*3*S*S {
		panic(fmt.Sprintf("swin: pixel tensor %v for %d images of 3×%d×%d", px.Shape(), B, S, S))
	}
	x, s := m.forwardTensor(px, B, nil)
	defer m.be.Free(x)
	return m.pool(x, B, s)
}

// forward returns the last stage's tokens (B·s·s, C) before the final norm
// and the map side s; hook, when not nil, sees each features stage's output
// under the fixture's names ("features.i").
func (m *Model) forward(pixels []float32, B int, hook func(name string, t backend.Tensor)) (backend.Tensor, int) {
	be, S := m.be, m.cfg.ImageSize
	if B <= 0 || len(pixels) != B*3*S*S {
		panic(fmt.Sprintf("swin: %d pixel values for %d images of 3×%d×%d", len(pixels), B, S, S))
	}
	px := be.FromFloat32(pixels, B, 3, S, S)
	defer be.Free(px)
	return m.forwardTensor(px, B, hook)
}

// forwardTensor is forward on pixels already on the backend.
func (m *Model) forwardTensor(px backend.Tensor, B int, hook func(name string, t backend.Tensor)) (backend.Tensor, int) {
	be, c := m.be, m.cfg
	S, P, E := c.ImageSize, c.PatchSize, c.EmbedDim
	s := S / P
	patches := be.Zeros(B*s*s, 3*P*P)
	be.Patchify(patches, px, B, S, P)
	x := be.Zeros(B*s*s, E)
	be.Linear(x, patches, m.patchW, m.patchB, backend.ActNone)
	be.Free(patches)
	be.LayerNorm(x, x, m.pnormG, m.pnormB, LayerNormEps, nil, nil)
	if hook != nil {
		hook("features.0", x)
	}
	for i := range m.stages {
		C := c.StageDim(i)
		st := &m.stages[i]
		sc := newScratch(be, B, s, C, c.Hidden(i), c.WindowSize)
		for j := range st.blocks {
			m.blockForward(i, j, x, sc, B, s, C)
		}
		sc.free(be)
		if hook != nil {
			hook(fmt.Sprintf("features.%d", 2*i+1), x)
		}
		if st.merge != nil {
			y := m.mergeForward(st.merge, x, B, s, C)
			be.Free(x)
			x, s = y, (s+1)/2
			if hook != nil {
				hook(fmt.Sprintf("features.%d", 2*i+2), x)
			}
		}
	}
	return x, s
}

// scratch holds one stage's block intermediates: the map (B·s·s rows) and
// its window layout (B·nW·N rows, padded).
type scratch struct {
	ln, x1, back   backend.Tensor // (B·s·s, C)
	win, att, proj backend.Tensor // (B·nW·N, C)
	qkv            backend.Tensor // (B·nW·N, 3C)
	h              backend.Tensor // (B·s·s, F)
	padded         backend.Tensor // (1 + B·s·s, C) when the map is padded
}

func newScratch(be backend.Backend, B, s, C, F, ws int) *scratch {
	p := (s + ws - 1) / ws * ws
	n, wn := B*s*s, B*p*p
	sc := &scratch{
		ln: be.Zeros(n, C), x1: be.Zeros(n, C), back: be.Zeros(n, C), h: be.Zeros(n, F),
		win: be.Zeros(wn, C), att: be.Zeros(wn, C), proj: be.Zeros(wn, C), qkv: be.Zeros(wn, 3*C),
	}
	if p != s {
		sc.padded = be.Zeros(1, n+1, C)
	}
	return sc
}

func (sc *scratch) free(be backend.Backend) {
	for _, t := range []backend.Tensor{sc.ln, sc.x1, sc.back, sc.win, sc.att, sc.proj, sc.qkv, sc.h, sc.padded} {
		be.Free(t)
	}
}

// blockForward replaces x (B·s·s, C) by block (i, j)'s output. As
// shifted_window_attention: norm1, pad, roll by −shift, windows, attention
// with the relative position bias (and mask), proj, back, unpad; then the MLP.
func (m *Model) blockForward(i, j int, x backend.Tensor, sc *scratch, B, s, C int) {
	be := m.be
	bl := &m.stages[i].blocks[j]
	ws := m.cfg.WindowSize
	p := (s + ws - 1) / ws * ws
	bias, shift := m.attnBias(i, j, s)
	be.LayerNorm(sc.ln, x, bl.norm1G, bl.norm1B, LayerNormEps, nil, nil)
	src := sc.ln
	if sc.padded != nil {
		be.PrependRow(sc.padded, sc.ln, m.zeroRow(C), 1, B*s*s)
		src = be.Reshape(sc.padded, 1+B*s*s, C)
	}
	be.GatherRows(sc.win, src, m.gatherRows(rowKey{rowsWindow, B, s, shift}))
	be.Linear(sc.qkv, sc.win, bl.qkvW, bl.qkvB, backend.ActNone)
	nW := (p / ws) * (p / ws)
	be.AttentionBias(sc.att, sc.qkv, bias, B*nW, ws*ws, bl.heads, nil)
	be.Linear(sc.proj, sc.att, bl.projW, bl.projB, backend.ActNone)
	be.GatherRows(sc.back, sc.proj, m.gatherRows(rowKey{rowsUnwindow, B, s, shift}))
	be.Add(sc.x1, x, sc.back)
	be.LayerNorm(sc.ln, sc.x1, bl.norm2G, bl.norm2B, LayerNormEps, nil, nil)
	be.Linear(sc.h, sc.ln, bl.fc1W, bl.fc1B, backend.ActGELU)
	be.Linear(x, sc.h, bl.fc2W, bl.fc2B, backend.ActNone)
	be.Add(x, x, sc.x1)
}

// mergeForward is PatchMerging on x (B·s·s, C): (B·o·o, 2C), o = ceil(s/2).
func (m *Model) mergeForward(mg *merge, x backend.Tensor, B, s, C int) backend.Tensor {
	be := m.be
	o := (s + 1) / 2
	src := x
	pad := s%2 == 1
	if pad {
		z := be.Zeros(1, B*s*s+1, C)
		defer be.Free(z)
		be.PrependRow(z, x, m.zeroRow(C), 1, B*s*s)
		src = be.Reshape(z, B*s*s+1, C)
	}
	cat := be.Zeros(B*o*o*4, C)
	defer be.Free(cat)
	be.GatherRows(cat, src, m.gatherRows(rowKey{rowsMerge, B, s, 0}))
	cat4 := be.Reshape(cat, B*o*o, 4*C) // four consecutive rows of C are one row of 4C
	be.LayerNorm(cat4, cat4, mg.normG, mg.normB, LayerNormEps, nil, nil)
	out := be.Zeros(B*o*o, 2*C)
	be.Linear(out, cat4, mg.redW, nil, backend.ActNone)
	return out
}

// poolChunk is the number of images averaged by one GEMM: the pooling
// matrix is (poolChunk, poolChunk·s²), small at any batch size.
const poolChunk = 32

// pool applies the final norm to x (B·s·s, C) and averages each image's
// tokens: (B, C) on the host.
func (m *Model) pool(x backend.Tensor, B, s int) []float32 {
	be := m.be
	C, T := m.cfg.Dim(), s*s
	out := make([]float32, 0, B*C)
	for b0 := 0; b0 < B; b0 += poolChunk {
		n := min(poolChunk, B-b0)
		rows := make([]int, n*T)
		for i := range rows {
			rows[i] = b0*T + i
		}
		tok := be.Zeros(n*T, C)
		be.GatherRows(tok, x, rows)
		be.LayerNorm(tok, tok, m.normG, m.normB, LayerNormEps, nil, nil)
		a := make([]float32, n*n*T)
		inv := 1 / float32(T)
		for i := 0; i < n; i++ {
			for t := 0; t < T; t++ {
				a[i*n*T+i*T+t] = inv
			}
		}
		at := be.FromFloat32(a, n, n*T)
		res := be.Zeros(n, C)
		be.Gemm(false, false, 1, at, tok, 0, res)
		out = append(out, be.ToFloat32(res, nil)...)
		for _, t := range []backend.Tensor{tok, at, res} {
			be.Free(t)
		}
	}
	return out
}
