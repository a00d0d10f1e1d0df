package dinov2

import (
	"fmt"

	"github.com/litcache/litcache/internal/backend"
)

// Pooling of the final tokens into the image embedding.
const (
	// PoolCLS is the normed class token, x_norm_clstoken (C values).
	PoolCLS = "cls"
	// PoolMean is the mean of the normed patch tokens (registers and the
	// class token left out), C values.
	PoolMean = "mean"
	// PoolCLSMean is both concatenated, class token first (2C values): the
	// features DINOv2's linear probes train on (create_linear_input with
	// use_avgpool).
	PoolCLSMean = "cls+mean"
)

// Pools lists the poolings, the default first.
func Pools() []string { return []string{PoolCLS, PoolMean, PoolCLSMean} }

// Dim is the embedding size a pooling gives: C, or 2C for cls+mean.
func (c Config) Dim(pool string) int {
	if pool == PoolCLSMean {
		return 2 * c.EmbedDim
	}
	return c.EmbedDim
}

// CheckPool returns an error unless pool is one of Pools.
func CheckPool(pool string) error {
	for _, p := range Pools() {
		if pool == p {
			return nil
		}
	}
	return errorf("pooling %q is not one of cls, mean, cls+mean", pool)
}

// Encode runs the tower on pixels (B,3,S,S) at the config's ImageSize,
// normalised by Preprocessor, and returns the pooled embeddings (B, Dim(pool)).
func (m *Model) Encode(pixels []float32, B int, pool string) []float32 {
	if err := CheckPool(pool); err != nil {
		panic(err)
	}
	x := m.forward(pixels, B, m.cfg.ImageSize, nil)
	defer m.be.Free(x)
	return m.pool(x, B, m.cfg.ImageSize, pool)
}

// EncodeTensor is Encode on pixels already on the model's backend, (B,3,S,S)
// at ImageSize and normalised — by the GPU's image uploader, say. px stays
// the caller's.
func (m *Model) EncodeTensor(px backend.Tensor, B int, pool string) []float32 {
	if err := CheckPool(pool); err != nil {
		panic(err)
	}
	S := m.cfg.ImageSize
	if B <= 0 || px.Len() != B*3*S*S {
		panic(fmt.Sprintf("dinov2: pixel tensor %v for %d images of 3×%d×%d", px.Shape(), B, S, S))
	}
	x := m.forwardTensor(px, B, S, nil)
	defer m.be.Free(x)
	return m.pool(x, B, S, pool)
}

// forward returns x_prenorm (B·T, C), T = 1 + R + g², for images of side S;
// hook, when not nil, sees intermediate results under the fixture's names.
func (m *Model) forward(pixels []float32, B, S int, hook func(name string, t backend.Tensor, host []float32)) backend.Tensor {
	be, P := m.be, m.cfg.PatchSize
	if B <= 0 || len(pixels) != B*3*S*S || S%P != 0 {
		panic(fmt.Sprintf("dinov2: %d pixel values for %d images of 3×%d×%d (patch %d)", len(pixels), B, S, S, P))
	}
	g := S / P
	pos, err := m.positions(g)
	if err != nil {
		panic(err)
	}
	if hook != nil {
		hook("pos_embed_used", nil, pos.host)
	}
	px := be.FromFloat32(pixels, B, 3, S, S)
	defer be.Free(px)
	return m.forwardTensor(px, B, S, hook)
}

// forwardTensor is forward on pixels already on the backend.
func (m *Model) forwardTensor(px backend.Tensor, B, S int, hook func(name string, t backend.Tensor, host []float32)) backend.Tensor {
	be, c := m.be, m.cfg
	C, P, R := c.EmbedDim, c.PatchSize, c.NumRegisterTokens
	g := S / P
	pos, err := m.positions(g)
	if err != nil {
		panic(err)
	}
	patches := be.Zeros(B*g*g, 3*P*P)
	be.Patchify(patches, px, B, S, P)
	x := be.Zeros(B*g*g, C)
	be.Linear(x, patches, m.patchW, m.patchB, backend.ActNone)
	be.Free(patches)
	be.AddPeriodic(x, x, pos.patch, g*g)
	// Registers go between the class token and the patches, without
	// positions: prepend them last to first, then the class token.
	T := g * g
	for r := R - 1; r >= -1; r-- {
		tok := m.clsPos
		if r >= 0 {
			tok = m.regs[r]
		}
		y := be.Zeros(B, T+1, C)
		be.PrependRow(y, x, tok, B, T)
		be.Free(x)
		x, T = be.Reshape(y, B*(T+1), C), T+1
	}
	s := newScratch(be, B*T, C, c.Hidden(), c.FFNLayer == FFNSwiGLU)
	defer s.free(be)
	for i := range m.blocks {
		m.blocks[i].forward(be, x, s, B, T, c)
	}
	if hook != nil {
		hook("x_prenorm", x, nil)
	}
	return x
}

// scratch holds one batch's block intermediates, shared by all blocks.
type scratch struct {
	ln, qkv, att, x1, h, hg backend.Tensor
}

func newScratch(be backend.Backend, N, C, F int, swiglu bool) *scratch {
	s := &scratch{ln: be.Zeros(N, C), qkv: be.Zeros(N, 3*C), att: be.Zeros(N, C), x1: be.Zeros(N, C)}
	if swiglu {
		s.h, s.hg = be.Zeros(N, 2*F), be.Zeros(N, F)
	} else {
		s.h = be.Zeros(N, F)
	}
	return s
}

func (s *scratch) free(be backend.Backend) {
	for _, t := range []backend.Tensor{s.ln, s.qkv, s.att, s.x1, s.h, s.hg} {
		be.Free(t)
	}
}

// forward replaces x (B·T, C) by the block's output.
func (b *block) forward(be backend.Backend, x backend.Tensor, s *scratch, B, T int, c Config) {
	be.LayerNorm(s.ln, x, b.norm1G, b.norm1B, LayerNormEps, nil, nil)
	be.Linear(s.qkv, s.ln, b.qkvW, b.qkvB, backend.ActNone)
	be.Attention(s.att, s.qkv, B, T, c.NumHeads, false, nil)
	be.Linear(s.x1, s.att, b.projW, b.projB, backend.ActNone)
	be.Add(s.x1, s.x1, x)
	be.LayerNorm(s.ln, s.x1, b.norm2G, b.norm2B, LayerNormEps, nil, nil)
	if c.FFNLayer == FFNSwiGLU {
		be.Linear(s.h, s.ln, b.inW, b.inB, backend.ActNone)
		be.SwiGLU(s.hg, s.h)
		be.Linear(x, s.hg, b.outW, b.outB, backend.ActNone)
	} else {
		be.Linear(s.h, s.ln, b.inW, b.inB, backend.ActGELU)
		be.Linear(x, s.h, b.outW, b.outB, backend.ActNone)
	}
	be.Add(x, x, s.x1)
}

// poolChunk is the number of images pooled by one GEMM: the pooling matrix
// is (k·poolChunk, poolChunk·T), small at any batch size.
const poolChunk = 32

// pool turns x_prenorm (B·T, C) into (B, Dim(pool)) on the host. The class
// token alone is gathered, then normed; the mean poolings norm a chunk of
// images' tokens and multiply by a pooling matrix whose rows select the
// class token and average the patch tokens, which also lays cls+mean out as
// concatenated rows.
func (m *Model) pool(x backend.Tensor, B, S int, pool string) []float32 {
	be, c := m.be, m.cfg
	C, R := c.EmbedDim, c.NumRegisterTokens
	g := S / c.PatchSize
	T := 1 + R + g*g
	if pool == PoolCLS {
		rows := make([]int, B)
		for b := range rows {
			rows[b] = b * T
		}
		cls := be.Zeros(B, C)
		defer be.Free(cls)
		be.GatherRows(cls, x, rows)
		be.LayerNorm(cls, cls, m.normG, m.normB, LayerNormEps, nil, nil)
		return be.ToFloat32(cls, nil)
	}
	k := 1
	if pool == PoolCLSMean {
		k = 2
	}
	out := make([]float32, 0, B*k*C)
	for b0 := 0; b0 < B; b0 += poolChunk {
		n := min(poolChunk, B-b0)
		rows := make([]int, n*T)
		for i := range rows {
			rows[i] = b0*T + i
		}
		tok := be.Zeros(n*T, C)
		be.GatherRows(tok, x, rows)
		be.LayerNorm(tok, tok, m.normG, m.normB, LayerNormEps, nil, nil)
		a := poolMatrix(n, T, 1+R, k == 2)
		at := be.FromFloat32(a, k*n, n*T)
		res := be.Zeros(k*n, C)
		be.Gemm(false, false, 1, at, tok, 0, res)
		out = append(out, be.ToFloat32(res, nil)...)
		be.Free(tok)
		be.Free(at)
		be.Free(res)
	}
	return out
}

// poolMatrix is (k·n, n·T): for image i, with cls, row 2i selects token
// i·T and row 2i+1 averages tokens i·T+first … i·T+T−1; without, row i averages.
func poolMatrix(n, T, first int, cls bool) []float32 {
	k := 1
	if cls {
		k = 2
	}
	a := make([]float32, k*n*n*T)
	inv := 1 / float32(T-first)
	for i := 0; i < n; i++ {
		r := i * k
		if cls {
			a[r*n*T+i*T] = 1
			r++
		}
		row := a[r*n*T+i*T:][:T]
		for t := first; t < T; t++ {
			row[t] = inv
		}
	}
	return a
}
