package tune

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/optim"
)

// Letters in shape comments: B batch rows, U distinct captions in the batch,
// T tokens (trimmed), D cached image width, E joint embedding width.

// MaxLogitScale is OpenCLIP's clamp on the learned log temperature: ln 100.
var MaxLogitScale = float32(math.Log(100))

// InitLogitScale is CLIP's initial log temperature, ln(1/0.07).
var InitLogitScale = float32(math.Log(1 / 0.07))

// TrainerOptions select how a LiT step is computed; none changes the result
// beyond float rounding (TestDedupTrimMatchesPlain).
type TrainerOptions struct {
	// Dedup encodes each distinct caption of a batch once and gathers its
	// embedding to every row using it (DESIGN.md decision 5).
	Dedup bool
	// Trim cuts the context to the batch's longest caption (its last non-pad
	// token, the end-of-text): the causal text tower pools at end-of-text, so
	// later positions influence neither the output nor the gradients.
	Trim bool
}

// Trainer runs LiT steps: the text tower and logit scale (and the optional
// image head) are trained against fixed image features — LiT: lock the image
// tower (arXiv 2111.07991).
type Trainer struct {
	be    backend.Backend
	text  *clip.TextTower
	head  *ImageHead // nil: the image side is locked entirely
	logit clip.Param // (1) log temperature
	opt   *optim.AdamW
	sched optim.Schedule
	o     TrainerOptions
	step  int // steps done
	prep  prepScratch
	dcap  backend.Tensor // (B,E) storage of the (U,E) gradient, on backends that view
}

// prepScratch is prepareText's memory, reused from step to step so that a
// step leaves (almost) no garbage behind.
type prepScratch struct {
	uniq []int
	rows []int
	seen map[string]int
	key  []byte
	out  []int32
}

// StepStats describes one step.
type StepStats struct {
	Step       int     // 0-based index of the step just taken
	Loss       float64 // symmetric InfoNCE before the update
	LR         float64 // learning rate of the update
	LogitScale float64 // log temperature after the update and clamp
	GradNorm   float64 // global gradient L2 norm before clipping
	Unique     int     // distinct captions in the batch (B when dedup is off)
	Encoded    int     // caption rows the text tower ran on (U)
	T          int     // context length the text tower ran at
}

// NewTrainer wires a text tower (and optional image head) to AdamW over all
// their parameters plus the logit scale, which starts at logitScale.
func NewTrainer(be backend.Backend, text *clip.TextTower, head *ImageHead, logitScale float32,
	opt optim.Options, sched optim.Schedule, o TrainerOptions) (*Trainer, error) {
	if err := sched.Validate(); err != nil {
		return nil, fmt.Errorf("tune: %w", err)
	}
	tr := &Trainer{be: be, text: text, head: head, sched: sched, o: o}
	tr.logit = clip.Param{Name: "logit_scale", Value: be.FromFloat32([]float32{logitScale}, 1), Grad: be.Zeros(1)}
	params := tr.Params()
	a, err := optim.NewAdamW(be, params, opt)
	if err != nil {
		return nil, fmt.Errorf("tune: %w", err)
	}
	tr.opt = a
	return tr, nil
}

// Params lists every trained parameter: the text tower's (OpenCLIP names),
// the image head's, and logit_scale.
func (tr *Trainer) Params() []clip.Param {
	ps := append([]clip.Param(nil), tr.text.Params()...)
	if tr.head != nil {
		ps = append(ps, tr.head.Params()...)
	}
	return append(ps, tr.logit)
}

// Optimizer is the AdamW that updates the parameters.
func (tr *Trainer) Optimizer() *optim.AdamW { return tr.opt }

// StepsDone is the number of steps taken (restored by checkpoints).
func (tr *Trainer) StepsDone() int { return tr.step }

// LogitScale is the current log temperature.
func (tr *Trainer) LogitScale() float32 {
	return tr.be.ToFloat32(tr.logit.Value, nil)[0]
}

// setLogitScale overwrites the log temperature (checkpoint restore, clamp).
func (tr *Trainer) setLogitScale(v float32) {
	t := tr.be.FromFloat32([]float32{v}, 1)
	tr.be.Copy(tr.logit.Value, t)
	tr.be.Free(t)
}

// Reserve sizes the text tower's activation memory for steps of B rows run
// at up to T tokens (the context, or with Trim the longest caption), so that
// no step allocates tensors: a smaller batch runs in views of it
// (clip.TextTower.Reserve).
func (tr *Trainer) Reserve(B, T int) {
	tr.text.Reserve(B, T)
	tr.be.Free(tr.zerosUpToB(1, B, tr.text.Config().EmbedDim))
}

// Text is the text tower being trained.
func (tr *Trainer) Text() *clip.TextTower { return tr.text }

// Head is the image head, nil when the image side is locked.
func (tr *Trainer) Head() *ImageHead { return tr.head }

// zeroGrad clears every gradient before a backward pass (backward ops accumulate).
func (tr *Trainer) zeroGrad() {
	tr.text.ZeroGrad()
	if tr.head != nil {
		tr.head.ZeroGrad()
	}
	tr.be.Zero(tr.logit.Grad)
}

// Step runs one LiT step on a batch: img (B,D) cached image features, ids
// (B,T) token rows (zero padded). Row b's image and caption are a positive
// pair; labels are 0..B-1 even when captions repeat (the plain computation's
// semantics: dedup changes only how much text is encoded).
func (tr *Trainer) Step(img []float32, ids []int32, B, T int) StepStats {
	be := tr.be
	tr.zeroGrad()

	// ---- text forward: distinct rows once, trimmed ----
	uids, rows, distinct, U, Tt := tr.prepareText(ids, B, T)
	textU := tr.text.Forward(uids, U, Tt) // (U,E)
	E := textU.Shape()[len(textU.Shape())-1]
	textB := textU // (B,E)
	if rows != nil {
		textB = be.Zeros(B, E)
		be.GatherRows(textB, textU, rows)
	}

	// ---- image side: optional head, then L2 normalisation ----
	D := len(img) / B
	imgT := be.FromFloat32(img, B, D) // (B,D)
	imgH := imgT                      // (B,E)
	if tr.head != nil {
		imgH = tr.head.Forward(imgT, B)
	}
	imgN := be.Zeros(B, E) // (B,E)
	be.L2Normalize(imgN, imgH)

	// ---- loss ----
	var dImgN backend.Tensor
	if tr.head != nil {
		dImgN = be.Zeros(B, E)
	}
	dTextB := be.Zeros(B, E)
	loss, dLogit := clip.ContrastiveLoss(be, imgN, textB, tr.LogitScale(), dImgN, dTextB)

	// ---- backward ----
	dTextU := dTextB // (U,E)
	if rows != nil {
		dTextU = tr.zerosUpToB(U, B, E)
		be.GatherRowsBackward(dTextU, dTextB, rows) // duplicate rows' gradients summed
	}
	tr.text.Backward(dTextU)
	if tr.head != nil {
		dImgH := be.Zeros(B, E)
		be.L2NormalizeBackward(dImgH, dImgN, imgH)
		tr.head.Backward(dImgH, imgT)
		be.Free(dImgH)
		be.Free(dImgN)
		be.Free(imgH)
	}
	g := be.FromFloat32([]float32{dLogit}, 1)
	be.Copy(tr.logit.Grad, g)
	be.Free(g)

	// ---- update ----
	lr := tr.sched.LR(tr.step)
	gn := tr.opt.Step(lr)
	// OpenCLIP: logit_scale.clamp_(0, math.log(100)) after each step.
	ls := tr.LogitScale()
	if c := min(max(ls, 0), MaxLogitScale); c != ls {
		tr.setLogitScale(c)
		ls = c
	}

	if rows != nil {
		be.Free(textB)
		be.Free(dTextU)
	}
	be.Free(dTextB)
	be.Free(imgN)
	be.Free(imgT)
	st := StepStats{Step: tr.step, Loss: float64(loss), LR: lr, LogitScale: float64(ls), GradNorm: gn, Unique: distinct, Encoded: U, T: Tt}
	tr.step++
	return st
}

// zerosUpToB returns a zeroed (U,E) tensor, U ≤ B. The distinct caption count
// U changes from step to step; on a backend that can view storage it is a
// view of one (B,E) tensor kept for the purpose, so that no step allocates.
// Free it as any tensor (freeing a view releases nothing).
func (tr *Trainer) zerosUpToB(U, B, E int) backend.Tensor {
	v, ok := tr.be.(backend.Viewer)
	if !ok {
		return tr.be.Zeros(U, E)
	}
	if tr.dcap == nil || tr.dcap.Len() < B*E {
		tr.be.Free(tr.dcap)
		tr.dcap = tr.be.Zeros(B, E)
	}
	t := v.View(tr.dcap, U, E)
	tr.be.Zero(t)
	return t
}

// prepareText applies dedup and trim to ids (B,T). It returns the rows to
// encode (U,Tt), the batch row → encoded row map (nil when every row is
// encoded as is), the number of distinct captions, U and Tt.
//
// With dedup, U is the distinct count rounded up to a multiple of B/8 with
// copies of one caption that no batch row uses (their gradient is exactly
// zero): the text tower keeps its activation memory while the shape repeats,
// instead of reallocating it for every count. When the rounded count reaches
// B, every row is encoded as is (the plain computation, no gather).
func (tr *Trainer) prepareText(ids []int32, B, T int) (out []int32, rows []int, distinct, U, Tt int) {
	p := &tr.prep
	uniq := p.uniq[:0] // batch row of each encoded caption
	if tr.o.Dedup {
		rows = grow(p.rows, B)
		if p.seen == nil {
			p.seen = make(map[string]int, B)
		}
		seen := p.seen
		clear(seen)
		key := grow(p.key, 4*T)
		p.key = key
		for b := 0; b < B; b++ {
			for t, id := range ids[b*T : (b+1)*T] {
				binary.LittleEndian.PutUint32(key[4*t:], uint32(id))
			}
			u, ok := seen[string(key)]
			if !ok {
				u = len(uniq)
				seen[string(key)] = u
				uniq = append(uniq, b)
			}
			rows[b] = u
		}
		p.rows = rows
		distinct = len(uniq)
		bucket := max(1, B/8)
		if padded := (distinct + bucket - 1) / bucket * bucket; padded < B {
			for len(uniq) < padded {
				uniq = append(uniq, uniq[0])
			}
		} else {
			uniq, rows = uniq[:0], nil
		}
	}
	if rows == nil {
		for b := len(uniq); b < B; b++ {
			uniq = append(uniq, b)
		}
		if !tr.o.Dedup {
			distinct = B
		}
	}
	p.uniq = uniq
	U = len(uniq)
	Tt = T
	if tr.o.Trim {
		Tt = 1
		for _, b := range uniq {
			Tt = max(Tt, captionLen(ids[b*T:(b+1)*T], Tt))
		}
	}
	if rows == nil && Tt == T {
		return ids, nil, distinct, B, T
	}
	out = grow(p.out, U*Tt)
	p.out = out
	for u, b := range uniq {
		copy(out[u*Tt:(u+1)*Tt], ids[b*T:b*T+Tt])
	}
	return out, rows, distinct, U, Tt
}

// captionLen is the length of a zero-padded token row up to its last
// non-zero token (the end-of-text), at least min.
func captionLen(row []int32, min int) int {
	for t := len(row) - 1; t >= min; t-- {
		if row[t] != 0 {
			return t + 1
		}
	}
	return min
}

// grow returns s resized to n elements, reallocated only when too small.
func grow[E any](s []E, n int) []E {
	if cap(s) < n {
		return make([]E, n)
	}
	return s[:n]
}
