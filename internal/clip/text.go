package clip

import (
	"fmt"

	"github.com/litcache/litcache/internal/backend"
)

// TextTower is CLIP's text transformer as OpenCLIP computes it:
//
//	x = token_embedding[ids] + positional_embedding[:T]
//	x = blocks(x)                       causal self-attention
//	emb = ln_final(x[b, eot_b]) · text_projection
//
// eot_b is the first position of row b holding the end-of-text id
// (vocab_size-1); rows without one pool at their largest id, OpenCLIP's
// argmax. ln_final is a per-row op, so it runs on the pooled rows only.
//
// Forward keeps the activations Backward needs; Backward accumulates every
// parameter's gradient (LiT trains this tower against a locked image tower).
// Encode may be called from several goroutines at once; Forward, Backward and
// ZeroGrad share the tower's activations and gradients and may not.
type TextTower struct {
	be      backend.Backend
	cfg     Config
	tok     backend.Tensor // token_embedding.weight (V,W)
	pos     backend.Tensor // positional_embedding (ctx,W)
	dtok    backend.Tensor
	dpos    backend.Tensor
	blocks  []block
	lnFinal layerNorm
	proj    linear // (E,W): OpenCLIP's text_projection (W,E) transposed
	ps      paramSet
	ws      *textState // the workspace: activations of the largest batch seen
	st      *textState // activations of the last Forward: ws or views of it
}

// textState holds one batch shape's activations and scratch, reused while
// the shape stays the same: the workspace's own tensors, or views of them.
type textState struct {
	B, T       int
	bufs       []backend.Tensor // the workspace's tensors in allocation order (nil for views)
	ids        []int32
	rows       []int            // pooled row of each sequence in (B·T)
	res        []backend.Tensor // residual stream before block l, and after the last (L+1)×(N,W)
	acts       []*blockActs
	s          *blockScratch
	pooled     backend.Tensor // (B,W) last hidden state at the end-of-text tokens
	meanF      backend.Tensor // (B)
	rstdF      backend.Tensor // (B)
	lnf        backend.Tensor // (B,W) ln_final(pooled)
	emb        backend.Tensor // (B,E)
	dres       backend.Tensor // (N,W)
	dlnf       backend.Tensor // (B,W)
	dpooled    backend.Tensor // (B,W)
	backwarded bool
}

func newTextTower(be backend.Backend, cfg Config) *TextTower {
	t := cfg.Text
	tt := &TextTower{be: be, cfg: cfg, blocks: make([]block, t.Layers)}
	ps := &tt.ps
	ps.add("token_embedding.weight", &tt.tok, &tt.dtok, t.VocabSize, t.Width)
	ps.add("positional_embedding", &tt.pos, &tt.dpos, t.ContextLength, t.Width)
	for i := range tt.blocks {
		tt.blocks[i].register(ps, fmt.Sprintf("transformer.resblocks.%d", i), t.Width, t.Hidden())
	}
	tt.lnFinal.register(ps, "ln_final", t.Width)
	ps.addProjection("text_projection", &tt.proj.w, &tt.proj.dw, cfg.EmbedDim, t.Width)
	return tt
}

// Config is the model config the tower was built with.
func (tt *TextTower) Config() Config { return tt.cfg }

// Params lists the tower's parameters with their gradients (allocated on first
// use), in OpenCLIP state-dict order.
func (tt *TextTower) Params() []Param {
	tt.ps.allocGrads(tt.be)
	return tt.ps.params()
}

// ZeroGrad sets every gradient to zero.
func (tt *TextTower) ZeroGrad() {
	tt.ps.allocGrads(tt.be)
	for _, r := range tt.ps {
		tt.be.Zero(*r.grad)
	}
}

// PoolPositions returns, for each row of ids (B,T), the position the tower
// pools at: the first end-of-text id (vocab_size-1), else the largest id.
func (tt *TextTower) PoolPositions(ids []int32, B, T int) []int {
	return poolPositions(ids, B, T, tt.cfg.Text.EOT())
}

func poolPositions(ids []int32, B, T int, eot int32) []int {
	pos := make([]int, B)
	for b := 0; b < B; b++ {
		row := ids[b*T : (b+1)*T]
		best := 0
		for t, id := range row {
			if id == eot {
				best = t
				break
			}
			if id > row[best] {
				best = t
			}
		}
		pos[b] = best
	}
	return pos
}

func (tt *TextTower) checkIDs(ids []int32, B, T int) {
	ctx, V := tt.cfg.Text.ContextLength, tt.cfg.Text.VocabSize
	if B <= 0 || T <= 0 || T > ctx {
		panic(fmt.Sprintf("clip: text: batch %d×%d outside 1..context_length %d", B, T, ctx))
	}
	if len(ids) != B*T {
		panic(fmt.Sprintf("clip: text: %d ids for a %d×%d batch", len(ids), B, T))
	}
	for i, id := range ids {
		if id < 0 || int(id) >= V {
			panic(fmt.Sprintf("clip: text: token id %d (row %d, position %d) outside the vocabulary of %d", id, i/T, i%T, V))
		}
	}
}

// ContextBucket is the multiple Encode rounds a context up to.
const ContextBucket = 8

// BucketContext rounds T up to a multiple of ContextBucket, at most ctx.
func BucketContext(T, ctx int) int {
	return min((T+ContextBucket-1)/ContextBucket*ContextBucket, max(ctx, T))
}

// PadContext widens ids (B,T) to (B,Tp), Tp ≥ T, with id 0 after each row.
func PadContext(ids []int32, B, T, Tp int) []int32 {
	if Tp == T {
		return ids
	}
	out := make([]int32, B*Tp)
	for b := 0; b < B; b++ {
		copy(out[b*Tp:], ids[b*T:(b+1)*T])
	}
	return out
}

// Encode runs the tower on ids (B,T), T ≤ context_length (a shorter T uses the
// first T positional embeddings), and returns the text embeddings (B,E),
// projected and not normalised. It keeps no activations.
//
// T is first rounded up to a multiple of ContextBucket (at most
// context_length) with padding after every row: causal attention hides the
// new positions from every earlier one, and the tower pools at or before
// position T-1, so the embeddings are the same up to float rounding. Callers
// trim each batch to its longest row; the rounding leaves the backend a few
// recurring shapes, whose memory it reuses (backend.Viewer's note).
func (tt *TextTower) Encode(ids []int32, B, T int) []float32 {
	tt.checkIDs(ids, B, T)
	if Tp := BucketContext(T, tt.cfg.Text.ContextLength); Tp != T {
		ids, T = PadContext(ids, B, T, Tp), Tp
	}
	out := tt.encode(ids, B, T, nil)
	emb := tt.be.ToFloat32(out, nil)
	tt.be.Free(out)
	return emb
}

// encode is Encode returning the (B,E) tensor; hook, when not nil, sees the
// hidden states under the fixture's names (text_last_hidden computed on every row).
func (tt *TextTower) encode(ids []int32, B, T int, hook func(name string, t backend.Tensor)) backend.Tensor {
	tt.checkIDs(ids, B, T)
	be, c := tt.be, tt.cfg.Text
	W := c.Width
	x := be.Zeros(B*T, W)
	defer be.Free(x)
	be.Embedding(x, tt.tok, ids)
	be.AddPeriodic(x, x, tt.pos, T)
	if hook != nil {
		hook("text_hidden.0", x)
	}
	s := newBlockScratch(be.Zeros, B*T, W, c.Hidden(), false)
	defer s.free(be)
	d := seqDims{B: B, T: T, H: c.Heads, causal: true, act: tt.cfg.Act()}
	for i := range tt.blocks {
		tt.blocks[i].forward(be, x, x, nil, s, d)
		if hook != nil {
			hook(fmt.Sprintf("text_hidden.%d", i+1), x)
		}
	}
	if hook != nil {
		tt.lnFinal.forward(be, s.ln, x, nil, nil)
		hook("text_last_hidden", s.ln)
	}
	pooled := be.Zeros(B, W)
	defer be.Free(pooled)
	be.GatherRows(pooled, x, tt.rows(ids, B, T))
	tt.lnFinal.forward(be, pooled, pooled, nil, nil)
	out := be.Zeros(B, tt.cfg.EmbedDim)
	tt.proj.forward(be, out, pooled, backend.ActNone)
	return out
}

// rows maps each sequence's pool position to its row in the (B·T, W) stream.
func (tt *TextTower) rows(ids []int32, B, T int) []int {
	rows := tt.PoolPositions(ids, B, T)
	for b := range rows {
		rows[b] += b * T
	}
	return rows
}

// Reserve sizes the activation memory for batches of up to B rows of T
// tokens, so that training steps of any smaller shape allocate nothing
// (see state).
func (tt *TextTower) Reserve(B, T int) {
	if B <= 0 || T <= 0 || T > tt.cfg.Text.ContextLength {
		panic(fmt.Sprintf("clip: text: Reserve %d×%d outside 1..context_length %d", B, T, tt.cfg.Text.ContextLength))
	}
	if ws := tt.ws; ws != nil && ws.B >= B && ws.T >= T {
		return
	}
	if _, ok := tt.be.(backend.Viewer); ok {
		tt.state(B, T)
	}
}

// state returns the activation memory for a (B,T) batch. Trimmed contexts
// and deduplicated caption counts change the shape nearly every step;
// reallocating for each left the old activations to the garbage collector
// and the heap at twice the live tensors (issue 15). So the tower keeps one
// workspace, sized for the largest B and the largest T seen (or reserved),
// and on a backend that can view storage (backend.Viewer) runs a smaller
// batch in views of it: same shapes, same ops, same results, no allocation
// once the largest batch has been seen. Other backends get a workspace of
// each batch's exact shape, reallocated when it changes.
func (tt *TextTower) state(B, T int) *textState {
	if st := tt.st; st != nil && st.B == B && st.T == T {
		return st
	}
	be := tt.be
	v, canView := be.(backend.Viewer)
	if ws := tt.ws; ws == nil || !canView || B > ws.B || T > ws.T {
		capB, capT := B, T
		if ws != nil && canView {
			capB, capT = max(B, ws.B), max(T, ws.T)
		}
		// Only a viewing backend's workspace grows (others get one per
		// shape, whose buffers their pool may reuse when the shape recurs).
		grown := ws != nil && canView
		tt.freeState()
		var bufs []backend.Tensor
		tt.ws = tt.newState(capB, capT, func(shape ...int) backend.Tensor {
			t := be.Zeros(shape...)
			bufs = append(bufs, t)
			return t
		})
		tt.ws.bufs = bufs
		if grown {
			// The old workspace's lengths will not be asked for again.
			backend.Trim(be)
		}
	}
	ws := tt.ws
	if ws.B == B && ws.T == T {
		tt.st = ws
		return ws
	}
	i := 0
	tt.st = tt.newState(B, T, func(shape ...int) backend.Tensor {
		t := v.View(ws.bufs[i], shape...)
		i++
		return t
	})
	return tt.st
}

// newState lays out the activations of a (B,T) batch, each tensor from alloc
// in a fixed order (state relies on it to match views to buffers).
func (tt *TextTower) newState(B, T int, alloc allocFunc) *textState {
	c := tt.cfg.Text
	N, W, F := B*T, c.Width, c.Hidden()
	st := &textState{B: B, T: T, res: make([]backend.Tensor, c.Layers+1), acts: make([]*blockActs, c.Layers)}
	d := seqDims{B: B, T: T, H: c.Heads}
	for i := range st.res {
		st.res[i] = alloc(N, W)
	}
	for i := range st.acts {
		st.acts[i] = newBlockActs(alloc, d, W, F)
	}
	st.s = newBlockScratch(alloc, N, W, F, true)
	st.pooled, st.lnf, st.dlnf, st.dpooled = alloc(B, W), alloc(B, W), alloc(B, W), alloc(B, W)
	st.meanF, st.rstdF = alloc(B), alloc(B)
	st.emb = alloc(B, tt.cfg.EmbedDim)
	st.dres = alloc(N, W)
	return st
}

// freeState releases the workspace (views need no release).
func (tt *TextTower) freeState() {
	if tt.ws != nil {
		for _, t := range tt.ws.bufs {
			tt.be.Free(t)
		}
	}
	tt.ws, tt.st = nil, nil
}

// Forward runs the tower on ids (B,T) keeping the activations for Backward
// and returns the embeddings (B,E), projected and not normalised. The tensor
// belongs to the tower and stays valid until the next Forward.
func (tt *TextTower) Forward(ids []int32, B, T int) backend.Tensor {
	tt.checkIDs(ids, B, T)
	be, c := tt.be, tt.cfg.Text
	st := tt.state(B, T)
	st.ids = append(st.ids[:0], ids...)
	st.rows = tt.rows(ids, B, T)
	st.backwarded = false

	be.Embedding(st.res[0], tt.tok, ids)
	be.AddPeriodic(st.res[0], st.res[0], tt.pos, T)
	d := seqDims{B: B, T: T, H: c.Heads, causal: true, act: tt.cfg.Act()}
	for i := range tt.blocks {
		tt.blocks[i].forward(be, st.res[i+1], st.res[i], st.acts[i], st.s, d)
	}
	be.GatherRows(st.pooled, st.res[c.Layers], st.rows)
	tt.lnFinal.forward(be, st.lnf, st.pooled, st.meanF, st.rstdF)
	tt.proj.forward(be, st.emb, st.lnf, backend.ActNone)
	return st.emb
}

// Backward takes the loss gradient with respect to the last Forward's output,
// dEmb (B,E), and accumulates the gradient of every parameter (token and
// positional embeddings, every block, ln_final, text_projection). Call
// ZeroGrad between steps. It panics without a preceding Forward.
func (tt *TextTower) Backward(dEmb backend.Tensor) {
	st := tt.st
	if st == nil {
		panic("clip: text: Backward without Forward")
	}
	if st.backwarded {
		panic("clip: text: Backward called twice for one Forward (the activations were consumed)")
	}
	if s := dEmb.Shape(); dEmb.Len() != st.B*tt.cfg.EmbedDim {
		panic(fmt.Sprintf("clip: text: Backward: dEmb %v for a batch of %d×%d", s, st.B, tt.cfg.EmbedDim))
	}
	st.backwarded = true
	tt.ps.allocGrads(tt.be)
	be, c := tt.be, tt.cfg.Text

	// emb = lnf · projᵀ
	be.Zero(st.dlnf)
	tt.proj.backward(be, st.dlnf, dEmb, st.lnf)
	// lnf = ln_final(pooled)
	be.Zero(st.dpooled)
	tt.lnFinal.backward(be, st.dpooled, st.dlnf, st.pooled, st.meanF, st.rstdF)
	// pooled = res[L][rows]
	be.Zero(st.dres)
	be.GatherRowsBackward(st.dres, st.dpooled, st.rows)
	d := seqDims{B: st.B, T: st.T, H: c.Heads, causal: true, act: tt.cfg.Act()}
	for i := len(tt.blocks) - 1; i >= 0; i-- {
		tt.blocks[i].backward(be, st.dres, st.res[i], st.acts[i], st.s, d)
	}
	// res[0] = tok[ids] + pos[:T]
	be.AddPeriodicBackward(tt.dpos, st.dres, st.T)
	be.EmbeddingBackward(tt.dtok, st.dres, st.ids)
}

// Free releases the tower's weights, gradients and activations.
func (tt *TextTower) Free() {
	tt.freeState()
	tt.ps.free(tt.be)
}
