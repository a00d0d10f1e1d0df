package cuda

import (
	"fmt"
	"math"
	"strings"
	"unsafe"

	"github.com/litcache/litcache/internal/backend"
)

// LiT is a GPU trainer of CLIP's text tower against image embeddings
// resident on the device (LiT: lock the image tower, arXiv 2111.07991),
// written out op by op as llm.c writes GPT-2's step, because a step at speed
// needs what a generic backend cannot give: every parameter, gradient and
// Adam moment in one flat float32 buffer (one AdamW launch, one gradient
// norm, one memset), activations of the backend's precision (bf16 or
// float32) in one arena sized once for the largest step, batches gathered
// on the device by index from a float16 copy of the cache, the InfoNCE loss
// fused with its gradient and the logit scale read on the device, and a
// step that never waits for the host, so that it can be captured as a CUDA
// graph and replayed.
//
// Precision follows the Backend: BF16 computes in bf16 (tensor cores) with
// float32 accumulation, float32 master weights, gradients and moments, the
// loss, logit scale and softmax statistics in float32, and a bf16 copy of
// the weights rewritten by each AdamW step; F32 runs float32 throughout.
//
// Letters: B batch rows, U captions encoded (distinct ones, padded), T
// tokens run, W width, F MLP hidden width, H heads, D head width (in the
// image head: the cached feature width), E embed dim, L layers, N = U·T.
//
// A LiT is driven from one goroutine at a time.
type LiT struct {
	b   *Backend
	m   LiTModel
	o   LiTOptions
	p   litParams
	act uint64 // bytes per activation element (the backend's precision)

	master, grad, mom1, mom2 Buffer // float32 (n)
	copy16                   Buffer // bf16 (n), BF16 only: the forward's weights

	arena  Buffer // activations, laid out per step shape (litActs)
	arenaU int    // the shape the arena was sized for
	arenaT int
	loss   litLoss // the B-level loss buffers (fixed B)
	io     litIO   // per-step indices and scalars
	step   int     // AdamW steps taken
	graphs map[litGraphKey]*litGraph

	pending bool
	// dirty is set once a step's work is queued and cleared when it has
	// completed: while it is set the device's weights may be part updated.
	dirty bool
}

// LiTModel is the text tower a LiT trains (OpenCLIP's text_cfg and
// embed_dim) and the optional image head.
type LiTModel struct {
	Vocab, Context int // V, the positional table's length
	Width, Heads   int // W, H
	Layers, Hidden int // L, F
	Embed          int // E
	Act            backend.Act
	Eps            float32 // LayerNorm epsilon
	// ImageDim is the cached features' width D; Head trains a linear map
	// (E,D) with bias on them (else D must equal E).
	ImageDim int
	Head     bool
}

// LiTParam is one trained tensor as the host holds it: OpenCLIP's name
// (text_projection in the Linear layout (E,W), as clip keeps it), its shape,
// its float32 values and whether AdamW decays it.
type LiTParam struct {
	Name  string
	Shape []int
	Data  []float32
	Decay bool
}

// LiTOptions are the step's fixed settings.
type LiTOptions struct {
	// Batch is B, the rows of every step; MaxTokens the most tokens a step
	// runs (a multiple of 8 up to the context; 0: the context). The arena
	// is sized for B captions of MaxTokens up front, so a run that starts
	// runs out of memory nowhere later and every step after the first
	// allocates nothing.
	Batch, MaxTokens int
	// AdamW (OpenCLIP's: β 0.9/0.98, eps 1e-6) and global gradient-norm
	// clipping (0: off).
	Beta1, Beta2, Eps, WeightDecay, ClipNorm float64
	// Graphs captures each step shape's work as a CUDA graph on its first
	// step and replays it after (launch overhead: one call instead of about
	// 40 per layer). Off by default until measured (issue 11).
	Graphs bool
}

// LiTStats is one step's outcome.
type LiTStats struct {
	Loss       float64 // the symmetric InfoNCE loss before the update
	GradNorm   float64 // global gradient L2 norm before clipping
	LogitScale float64 // the log temperature after the update and clamp
}

// litTensor is a parameter's place in the flat buffers, in elements.
type litTensor struct {
	off int64
	n   int
}

type litLayer struct {
	ln1g, ln1b, wqkv, bqkv, wo, bo, ln2g, ln2b, wfc, bfc, wproj, bproj litTensor
}

// litParams is the flat layout: decaying tensors first (AdamW decays
// elements below ndecay), each tensor 64-element aligned (128 bytes in
// bf16: every GEMM operand 16-byte aligned).
type litParams struct {
	tok, pos            litTensor
	layers              []litLayer
	lnfg, lnfb, proj    litTensor
	headW, headB, logit litTensor
	order               []litNamed // the caller's order
	n, ndecay           int64
}

type litNamed struct {
	name  string
	shape []int
	decay bool
	t     litTensor
}

// litAlign is the alignment of each tensor in the flat buffers (elements).
const litAlign = 64

// maxLogitScale is the clamp on the log temperature, ln 100 (OpenCLIP).
var maxLogitScale = float32(math.Log(100))

// litShapes lists the tensors the model has, by name, with their shapes.
func (m LiTModel) litShapes() map[string][]int {
	W, F := m.Width, m.Hidden
	s := map[string][]int{
		"token_embedding.weight": {m.Vocab, W},
		"positional_embedding":   {m.Context, W},
		"ln_final.weight":        {W},
		"ln_final.bias":          {W},
		"text_projection":        {m.Embed, W},
		"logit_scale":            {1},
	}
	for l := 0; l < m.Layers; l++ {
		p := fmt.Sprintf("transformer.resblocks.%d.", l)
		for k, v := range map[string][]int{
			"ln_1.weight": {W}, "ln_1.bias": {W},
			"attn.in_proj_weight": {3 * W, W}, "attn.in_proj_bias": {3 * W},
			"attn.out_proj.weight": {W, W}, "attn.out_proj.bias": {W},
			"ln_2.weight": {W}, "ln_2.bias": {W},
			"mlp.c_fc.weight": {F, W}, "mlp.c_fc.bias": {F},
			"mlp.c_proj.weight": {W, F}, "mlp.c_proj.bias": {W},
		} {
			s[p+k] = v
		}
	}
	if m.Head {
		s["image_head.weight"] = []int{m.Embed, m.ImageDim}
		s["image_head.bias"] = []int{m.Embed}
	}
	return s
}

func (m LiTModel) validate() error {
	switch {
	case m.Vocab < 1 || m.Context < 1 || m.Width < 1 || m.Heads < 1 || m.Layers < 1 || m.Hidden < 1 || m.Embed < 1:
		return fmt.Errorf("cuda: LiT: model %+v has a dimension below 1", m)
	case m.Width%m.Heads != 0:
		return fmt.Errorf("cuda: LiT: width %d is not a multiple of %d heads", m.Width, m.Heads)
	case m.Width > maxLNBackward:
		return fmt.Errorf("cuda: LiT: width %d over the %d the LayerNorm backward handles", m.Width, maxLNBackward)
	case !m.Head && m.ImageDim != m.Embed:
		return fmt.Errorf("cuda: LiT: cached features of width %d for a text tower embedding to %d need an image head", m.ImageDim, m.Embed)
	case m.Head && m.ImageDim < 1:
		return fmt.Errorf("cuda: LiT: image head from width %d", m.ImageDim)
	}
	return nil
}

// layoutParams places params (the caller's order) in the flat buffers and
// finds each tensor's role by name; every tensor the model has must be
// there once with its shape, and nothing else.
func (m LiTModel) layoutParams(params []LiTParam) (litParams, error) {
	want := m.litShapes()
	var lp litParams
	seen := map[string]bool{}
	for _, p := range params {
		shape, ok := want[p.Name]
		if !ok {
			return lp, fmt.Errorf("cuda: LiT: parameter %q is not part of the model", p.Name)
		}
		if seen[p.Name] {
			return lp, fmt.Errorf("cuda: LiT: parameter %q given twice", p.Name)
		}
		seen[p.Name] = true
		if !sameInts(shape, p.Shape) {
			return lp, fmt.Errorf("cuda: LiT: parameter %s has shape %v, the model's is %v", p.Name, p.Shape, shape)
		}
		if p.Data != nil && len(p.Data) != numel(shape) {
			return lp, fmt.Errorf("cuda: LiT: parameter %s: %d values for shape %v", p.Name, len(p.Data), shape)
		}
		lp.order = append(lp.order, litNamed{name: p.Name, shape: append([]int(nil), shape...), decay: p.Decay})
	}
	for name := range want {
		if !seen[name] {
			return lp, fmt.Errorf("cuda: LiT: parameter %s missing", name)
		}
	}
	// decaying tensors first, each section in the caller's order
	var off int64
	for _, decay := range []bool{true, false} {
		for i := range lp.order {
			if lp.order[i].decay != decay {
				continue
			}
			n := numel(lp.order[i].shape)
			lp.order[i].t = litTensor{off: off, n: n}
			off += (int64(n) + litAlign - 1) / litAlign * litAlign
		}
		if decay {
			lp.ndecay = off
		}
	}
	lp.n = off
	lp.layers = make([]litLayer, m.Layers)
	for _, t := range lp.order {
		lp.assign(t.name, t.t)
	}
	return lp, nil
}

// assign binds a tensor to its role.
func (lp *litParams) assign(name string, t litTensor) {
	switch name {
	case "token_embedding.weight":
		lp.tok = t
	case "positional_embedding":
		lp.pos = t
	case "ln_final.weight":
		lp.lnfg = t
	case "ln_final.bias":
		lp.lnfb = t
	case "text_projection":
		lp.proj = t
	case "logit_scale":
		lp.logit = t
	case "image_head.weight":
		lp.headW = t
	case "image_head.bias":
		lp.headB = t
	default:
		var l int
		var rest string
		if _, err := fmt.Sscanf(name, "transformer.resblocks.%d.", &l); err != nil {
			panic("cuda: LiT: unexpected parameter " + name) // layoutParams checked the names
		}
		rest = name[strings.Index(name[len("transformer.resblocks."):], ".")+len("transformer.resblocks.")+1:]
		ly := &lp.layers[l]
		*map[string]*litTensor{
			"ln_1.weight": &ly.ln1g, "ln_1.bias": &ly.ln1b,
			"attn.in_proj_weight": &ly.wqkv, "attn.in_proj_bias": &ly.bqkv,
			"attn.out_proj.weight": &ly.wo, "attn.out_proj.bias": &ly.bo,
			"ln_2.weight": &ly.ln2g, "ln_2.bias": &ly.ln2b,
			"mlp.c_fc.weight": &ly.wfc, "mlp.c_fc.bias": &ly.bfc,
			"mlp.c_proj.weight": &ly.wproj, "mlp.c_proj.bias": &ly.bproj,
		}[rest] = t
	}
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// NewLiT uploads params (the model's every tensor, logit_scale included)
// as the master weights, zeroes the moments, and reserves the step's
// memory: the arena for o.Batch captions of o.MaxTokens tokens and the
// loss's B×B buffers. An allocation that fails is an error naming what
// it was for and its size.
func NewLiT(b *Backend, m LiTModel, params []LiTParam, o LiTOptions) (l *LiT, err error) {
	defer Recover(&err)
	defer guard("LiT set-up")
	if err := m.validate(); err != nil {
		return nil, err
	}
	if o.Batch < 2 {
		return nil, fmt.Errorf("cuda: LiT: batch %d: a contrastive batch needs at least 2 rows", o.Batch)
	}
	if o.MaxTokens == 0 {
		o.MaxTokens = m.Context
	}
	if o.MaxTokens < 1 || o.MaxTokens > m.Context {
		return nil, fmt.Errorf("cuda: LiT: %d tokens outside 1..context %d", o.MaxTokens, m.Context)
	}
	lp, err := m.layoutParams(params)
	if err != nil {
		return nil, err
	}
	l = &LiT{b: b, m: m, o: o, p: lp, act: b.elem, graphs: map[litGraphKey]*litGraph{}}
	defer func() {
		if err != nil {
			l.Free()
			l = nil
		}
	}()
	alloc := func(what string, bytes uint64) Buffer {
		buf, err := b.dv.Alloc(bytes)
		if err != nil {
			panic(&OpError{Op: "LiT " + what, Err: err})
		}
		return buf
	}
	n := uint64(lp.n)
	l.master, l.grad = alloc("master weights", 4*n), alloc("gradients", 4*n)
	l.mom1, l.mom2 = alloc("Adam first moments", 4*n), alloc("Adam second moments", 4*n)
	for _, buf := range []Buffer{l.master, l.grad, l.mom1, l.mom2} {
		must(b.dv.Memset(buf.Ptr, buf.Bytes))
	}
	if b.prec == BF16 {
		l.copy16 = alloc("bf16 weight copy", 2*n)
	}
	host := make([]float32, lp.n)
	for i, p := range params {
		if p.Data != nil {
			copy(host[lp.order[i].t.off:], p.Data)
		}
	}
	if err := b.dv.CopyToDevice(l.master, unsafe.Slice((*byte)(unsafe.Pointer(&host[0])), 4*len(host))); err != nil {
		return nil, &OpError{Op: "LiT master weights", Err: err}
	}
	l.refreshCopy()
	l.io = newLitIO(b, o.Batch, alloc)
	l.loss = newLitLoss(l, alloc)
	if err := l.reserve(o.Batch, o.MaxTokens); err != nil {
		return nil, err
	}
	return l, nil
}

// refreshCopy rewrites the bf16 weight copy from the masters (after an
// upload; AdamW keeps it current otherwise).
func (l *LiT) refreshCopy() {
	if l.copy16.Ptr != 0 {
		must(l.b.k.launchF32ToBF16(l.b.gridN(int(l.p.n)), l.copy16.Ptr, l.master.Ptr, l.p.n))
	}
}

// w is the tensor the forward and backward read: the bf16 copy or the master.
func (l *LiT) w(t litTensor) uintptr {
	if l.copy16.Ptr != 0 {
		return l.copy16.Ptr + uintptr(2*t.off)
	}
	return l.master.Ptr + uintptr(4*t.off)
}

// g is the tensor's float32 gradient.
func (l *LiT) g(t litTensor) uintptr { return l.grad.Ptr + uintptr(4*t.off) }

// Model is the trained shape; Options the step's settings.
func (l *LiT) Model() LiTModel { return l.m }

// Options are the settings the trainer runs with.
func (l *LiT) Options() LiTOptions { return l.o }

// Intact reports whether the device's weights, moments and step count are
// those of the last completed step: true unless a launched step failed
// while running (a Launch refused before queueing anything leaves it true).
func (l *LiT) Intact() bool { return !l.dirty }

// Steps is the number of AdamW steps taken (SetState restores it).
func (l *LiT) Steps() int { return l.step }

// Params copies the master weights to the host, in the order NewLiT got them.
func (l *LiT) Params() (ps []LiTParam, err error) {
	defer Recover(&err)
	defer guard("LiT weights download")
	if err := l.settle(); err != nil {
		return nil, err
	}
	all := l.download(l.master)
	for _, t := range l.p.order {
		ps = append(ps, LiTParam{Name: t.name, Shape: append([]int(nil), t.shape...),
			Data: append([]float32(nil), all[t.t.off:t.t.off+int64(t.t.n)]...), Decay: t.decay})
	}
	return ps, nil
}

// Moments copies AdamW's first and second moments to the host, each in the
// order NewLiT got the parameters.
func (l *LiT) Moments() (m, v [][]float32, err error) {
	defer Recover(&err)
	defer guard("LiT moments download")
	if err := l.settle(); err != nil {
		return nil, nil, err
	}
	a, b := l.download(l.mom1), l.download(l.mom2)
	for _, t := range l.p.order {
		m = append(m, append([]float32(nil), a[t.t.off:t.t.off+int64(t.t.n)]...))
		v = append(v, append([]float32(nil), b[t.t.off:t.t.off+int64(t.t.n)]...))
	}
	return m, v, nil
}

// Grads copies the last step's gradients (before clipping) to the host, in
// NewLiT's parameter order: for tests against a reference's.
func (l *LiT) Grads() (g [][]float32, err error) {
	defer Recover(&err)
	defer guard("LiT gradients download")
	if err := l.settle(); err != nil {
		return nil, err
	}
	all := l.download(l.grad)
	for _, t := range l.p.order {
		g = append(g, append([]float32(nil), all[t.t.off:t.t.off+int64(t.t.n)]...))
	}
	return g, nil
}

// SetState restores AdamW's moments (in NewLiT's parameter order) and its
// step count, as a checkpoint saved them.
func (l *LiT) SetState(m, v [][]float32, steps int) (err error) {
	defer Recover(&err)
	defer guard("LiT moments upload")
	if len(m) != len(l.p.order) || len(v) != len(l.p.order) {
		return fmt.Errorf("cuda: LiT: moments for %d and %d tensors, the model has %d", len(m), len(v), len(l.p.order))
	}
	if err := l.settle(); err != nil {
		return err
	}
	for _, mv := range []struct {
		src [][]float32
		dst Buffer
	}{{m, l.mom1}, {v, l.mom2}} {
		host := make([]float32, l.p.n)
		for i, t := range l.p.order {
			if len(mv.src[i]) != t.t.n {
				return fmt.Errorf("cuda: LiT: moment of %s has %d values, the tensor %d", t.name, len(mv.src[i]), t.t.n)
			}
			copy(host[t.t.off:], mv.src[i])
		}
		if err := l.b.dv.CopyToDevice(mv.dst, unsafe.Slice((*byte)(unsafe.Pointer(&host[0])), 4*len(host))); err != nil {
			return &OpError{Op: "LiT moments", Err: err}
		}
	}
	l.step = steps
	return nil
}

// LogitScale reads the current log temperature.
func (l *LiT) LogitScale() (v float32, err error) {
	defer Recover(&err)
	defer guard("LiT logit scale")
	if err := l.settle(); err != nil {
		return 0, err
	}
	var out [4]byte
	must(l.b.dv.CopyToHost(out[:], Buffer{Ptr: l.master.Ptr + uintptr(4*l.p.logit.off), Bytes: 4}))
	return math.Float32frombits(uint32(out[0]) | uint32(out[1])<<8 | uint32(out[2])<<16 | uint32(out[3])<<24), nil
}

// settle waits for a launched step the caller has not waited for.
func (l *LiT) settle() error {
	if l.pending {
		if _, err := l.Wait(); err != nil {
			return err
		}
	}
	return nil
}

// download copies a flat float32 buffer to the host.
func (l *LiT) download(buf Buffer) []float32 {
	out := make([]float32, l.p.n)
	must(l.b.dv.CopyToHost(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*len(out)), buf))
	return out
}

// Free releases every buffer the trainer holds (best effort after a failure).
func (l *LiT) Free() {
	if l == nil {
		return
	}
	l.dropGraphs()
	for _, buf := range []*Buffer{&l.master, &l.grad, &l.mom1, &l.mom2, &l.copy16, &l.arena} {
		_ = l.b.dv.Free(*buf)
		*buf = Buffer{}
	}
	l.loss.free(l.b)
	l.io.free(l.b)
}
