package optim

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/safetensors"
)

// Options are AdamW's hyper-parameters. DefaultOptions gives OpenCLIP's.
type Options struct {
	Beta1, Beta2 float64
	Eps          float64
	WeightDecay  float64 // applied to parameters that decay (see Decays)
	// ClipNorm > 0 rescales all gradients together when their global L2 norm
	// exceeds it, as torch.nn.utils.clip_grad_norm_ does; 0 turns it off.
	ClipNorm float64
}

// DefaultOptions are OpenCLIP's training defaults for ViT models:
// β1 0.9, β2 0.98, eps 1e-6, weight decay 0.2, no clipping.
func DefaultOptions() Options {
	return Options{Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.2}
}

// Validate reports hyper-parameters AdamW cannot use.
func (o Options) Validate() error {
	switch {
	case !(o.Beta1 >= 0 && o.Beta1 < 1):
		return fmt.Errorf("optim: beta1 %g outside [0,1)", o.Beta1)
	case !(o.Beta2 >= 0 && o.Beta2 < 1):
		return fmt.Errorf("optim: beta2 %g outside [0,1)", o.Beta2)
	case !(o.Eps > 0):
		return fmt.Errorf("optim: eps %g must be > 0", o.Eps)
	case !(o.WeightDecay >= 0) || math.IsInf(o.WeightDecay, 0):
		return fmt.Errorf("optim: weight decay %g must be a finite number ≥ 0", o.WeightDecay)
	case !(o.ClipNorm >= 0) || math.IsInf(o.ClipNorm, 0):
		return fmt.Errorf("optim: gradient clip norm %g must be a finite number ≥ 0", o.ClipNorm)
	}
	return nil
}

// Decays reports whether a parameter gets weight decay under OpenCLIP's rule
// (open_clip_train/main.py: `exclude = p.ndim < 2 or "bn"/"ln"/"bias" in name
// or "logit_scale" in name`). For CLIP towers every gain and bias has ndim < 2,
// so the rule comes down to the shape and the logit scale.
func Decays(name string, shape []int) bool {
	return len(shape) >= 2 && !strings.Contains(name, "logit_scale")
}

// AdamW is torch.optim.AdamW over a fixed list of parameters, each step run by
// the backend's fused AdamW op. Moments live on the backend beside the weights.
type AdamW struct {
	be     backend.Backend
	params []clip.Param
	decay  []bool
	m, v   []backend.Tensor
	opt    Options
	t      int // steps taken; bias correction uses t ≥ 1
}

// NewAdamW prepares AdamW over params with zeroed moments. A parameter decays
// when its Decay flag is set and Decays agrees (so a 1-d gain or logit_scale
// never decays, whatever the caller flagged). Names must be unique: they key
// the saved state.
func NewAdamW(be backend.Backend, params []clip.Param, opt Options) (*AdamW, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	a := &AdamW{be: be, params: params, opt: opt}
	seen := make(map[string]bool, len(params))
	for _, p := range params {
		if p.Value == nil || p.Grad == nil {
			return nil, fmt.Errorf("optim: parameter %q has no value or gradient tensor", p.Name)
		}
		if p.Value.Len() != p.Grad.Len() {
			return nil, fmt.Errorf("optim: parameter %q: gradient has %d elements, value %d", p.Name, p.Grad.Len(), p.Value.Len())
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("optim: parameter name %q appears twice", p.Name)
		}
		seen[p.Name] = true
		shape := p.Value.Shape()
		a.decay = append(a.decay, p.Decay && Decays(p.Name, shape))
		a.m = append(a.m, be.Zeros(shape...))
		a.v = append(a.v, be.Zeros(shape...))
	}
	return a, nil
}

// Moments are the first and second moment tensors, one of each per
// parameter in NewAdamW's order (another implementation of the same step,
// the GPU trainer, keeps them and hands them back for checkpoints).
func (a *AdamW) Moments() (m, v []backend.Tensor) { return a.m, a.v }

// SetSteps sets the step count the next bias correction continues from
// (with Moments, restores a state computed elsewhere).
func (a *AdamW) SetSteps(t int) { a.t = t }

// Options returns the hyper-parameters the optimizer runs with.
func (a *AdamW) Options() Options { return a.opt }

// Steps is the number of steps taken (restored by Load).
func (a *AdamW) Steps() int { return a.t }

// Decaying lists the names of the parameters that receive weight decay.
func (a *AdamW) Decaying() []string {
	var out []string
	for i, p := range a.params {
		if a.decay[i] {
			out = append(out, p.Name)
		}
	}
	return out
}

// Step clips the gradients when ClipNorm is set, then applies one AdamW
// update with learning rate lr to every parameter. It returns the global
// gradient L2 norm before clipping. Gradients are left as they are (clipped);
// the caller zeroes them before the next backward pass.
func (a *AdamW) Step(lr float64) (gradNorm float64) {
	gradNorm = GradNorm(a.be, a.params)
	if a.opt.ClipNorm > 0 {
		// torch.nn.utils.clip_grad_norm_: coef = max_norm / (total_norm + 1e-6), clamped to 1.
		if coef := a.opt.ClipNorm / (gradNorm + 1e-6); coef < 1 {
			for _, p := range a.params {
				a.be.Scale(p.Grad, float32(coef))
			}
		}
	}
	a.t++
	for i, p := range a.params {
		wd := 0.0
		if a.decay[i] {
			wd = a.opt.WeightDecay
		}
		a.be.AdamW(p.Value, p.Grad, a.m[i], a.v[i], float32(lr),
			float32(a.opt.Beta1), float32(a.opt.Beta2), float32(a.opt.Eps), float32(wd), a.t)
	}
	return gradNorm
}

// GradNorm is the global L2 norm of all gradients (float64 accumulation).
func GradNorm(be backend.Backend, params []clip.Param) float64 {
	var ss float64
	for _, p := range params {
		ss += be.SumSquares(p.Grad)
	}
	return math.Sqrt(ss)
}

// Free releases the moment tensors.
func (a *AdamW) Free() {
	for i := range a.m {
		a.be.Free(a.m[i])
		a.be.Free(a.v[i])
	}
	a.m, a.v = nil, nil
}

// State file layout: one F32 tensor per moment, named as PyTorch's AdamW
// state_dict calls them ("exp_avg.NAME", "exp_avg_sq.NAME"), and metadata with
// the step count and hyper-parameters (informative; Load restores the step).
const (
	prefixM = "exp_avg."
	prefixV = "exp_avg_sq."
)

// Save writes the optimizer state (moments and step count) to a safetensors
// file; the write is atomic. Moments have their parameters' in-memory shapes
// (clip.Param.Value: text_projection is (E,W) there, the transpose of
// OpenCLIP's file layout), so a state is read back by Load, not by PyTorch.
func (a *AdamW) Save(path string) error {
	tensors := make([]safetensors.Tensor, 0, 2*len(a.params))
	// One host buffer for every moment: each is copied out only when the
	// writer reaches it, so a save holds one tensor's copy, not all of them.
	var buf []float32
	host := func(t backend.Tensor) func() []float32 {
		return func() []float32 {
			buf = a.be.ToFloat32(t, buf)
			return buf
		}
	}
	for i, p := range a.params {
		shape := p.Value.Shape()
		tensors = append(tensors,
			safetensors.F32Lazy(prefixM+p.Name, shape, host(a.m[i])),
			safetensors.F32Lazy(prefixV+p.Name, shape, host(a.v[i])))
	}
	meta := map[string]string{
		"format":       "litcache-adamw",
		"step":         strconv.Itoa(a.t),
		"beta1":        strconv.FormatFloat(a.opt.Beta1, 'g', -1, 64),
		"beta2":        strconv.FormatFloat(a.opt.Beta2, 'g', -1, 64),
		"eps":          strconv.FormatFloat(a.opt.Eps, 'g', -1, 64),
		"weight_decay": strconv.FormatFloat(a.opt.WeightDecay, 'g', -1, 64),
	}
	if err := safetensors.Write(path, tensors, meta); err != nil {
		return fmt.Errorf("optim: save state: %w", err)
	}
	return nil
}

// Load restores moments and the step count written by Save. Every parameter
// must have both moments with its shape; extra tensors are an error too, so a
// state from another model is refused rather than half applied.
func (a *AdamW) Load(path string) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return fmt.Errorf("optim: load state: %w", err)
	}
	defer f.Close()
	meta := f.Metadata()
	step, err := strconv.Atoi(meta["step"])
	if err != nil || step < 0 {
		return fmt.Errorf("optim: load state %s: bad step %q in metadata", path, meta["step"])
	}
	want := make(map[string]bool, 2*len(a.params))
	for i, p := range a.params {
		for _, mv := range []struct {
			name string
			t    backend.Tensor
		}{{prefixM + p.Name, a.m[i]}, {prefixV + p.Name, a.v[i]}} {
			want[mv.name] = true
			data, shape, err := f.Float32(mv.name)
			if err != nil {
				return fmt.Errorf("optim: load state %s: %w", path, err)
			}
			if !sameShape(shape, p.Value.Shape()) {
				return fmt.Errorf("optim: load state %s: %s has shape %v, parameter has %v", path, mv.name, shape, p.Value.Shape())
			}
			tmp := a.be.FromFloat32(data, shape...)
			a.be.Copy(mv.t, tmp)
			a.be.Free(tmp)
		}
	}
	for _, n := range f.Names() {
		if !want[n] {
			return fmt.Errorf("optim: load state %s: tensor %q matches no parameter", path, n)
		}
	}
	a.t = step
	return nil
}

func sameShape(a, b []int) bool {
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
