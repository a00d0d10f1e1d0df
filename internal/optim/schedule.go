// Package optim holds the optimizer and learning-rate schedules of LiT tuning:
// AdamW with OpenCLIP's defaults and decay exclusions, global gradient-norm
// clipping, and OpenCLIP's schedules (cosine, const, const-cooldown) with a
// linear warm-up counted in steps.
package optim

import (
	"fmt"
	"math"
	"strings"
)

// Kind names a learning-rate schedule as OpenCLIP's --lr-scheduler does.
type Kind string

const (
	// Cosine: linear warm-up, then half a cosine from the base rate to 0.
	Cosine Kind = "cosine"
	// Const: linear warm-up, then the base rate.
	Const Kind = "const"
	// ConstCooldown: linear warm-up, the base rate, then a polynomial cool-down
	// to EndLR over the last CooldownSteps steps.
	ConstCooldown Kind = "const-cooldown"
)

// Kinds lists the schedules ParseKind accepts.
func Kinds() []Kind { return []Kind{Cosine, Const, ConstCooldown} }

// ParseKind reads a schedule name ("cosine", "const", "const-cooldown").
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if strings.EqualFold(s, string(k)) {
			return k, nil
		}
	}
	names := make([]string, 0, 3)
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return "", fmt.Errorf("optim: unknown schedule %q (known: %s)", s, strings.Join(names, ", "))
}

// Schedule gives the learning rate of each step, 0-based, following
// open_clip_train/scheduler.py exactly (the fixture's lr column checks it).
type Schedule struct {
	Kind   Kind
	BaseLR float64
	Warmup int // steps of linear warm-up: lr = base·(step+1)/Warmup
	Steps  int // total steps of the run
	// CooldownSteps, CooldownPower and EndLR are used by ConstCooldown only:
	// over the last CooldownSteps steps lr = (1-e/es)^power·(base-end) + end.
	CooldownSteps int
	CooldownPower float64
	EndLR         float64
}

// Validate reports a schedule that cannot be evaluated.
func (s Schedule) Validate() error {
	if _, err := ParseKind(string(s.Kind)); err != nil {
		return err
	}
	switch {
	case s.BaseLR < 0 || math.IsNaN(s.BaseLR) || math.IsInf(s.BaseLR, 0):
		return fmt.Errorf("optim: schedule: base lr %g is not a finite non-negative number", s.BaseLR)
	case s.Warmup < 0:
		return fmt.Errorf("optim: schedule: warm-up %d < 0", s.Warmup)
	case s.Steps < 1:
		return fmt.Errorf("optim: schedule: %d steps (need at least 1)", s.Steps)
	}
	if s.Kind == ConstCooldown {
		if s.CooldownSteps < 1 || s.CooldownSteps > s.Steps {
			return fmt.Errorf("optim: schedule: cool-down of %d steps outside 1..%d", s.CooldownSteps, s.Steps)
		}
		if s.CooldownPower <= 0 {
			return fmt.Errorf("optim: schedule: cool-down power %g must be > 0", s.CooldownPower)
		}
	}
	return nil
}

// LR is the learning rate at step (0-based).
func (s Schedule) LR(step int) float64 {
	if step < s.Warmup {
		// _warmup_lr(base_lr, warmup_length, step)
		return s.BaseLR * float64(step+1) / float64(s.Warmup)
	}
	switch s.Kind {
	case Const:
		return s.BaseLR
	case ConstCooldown:
		start := s.Steps - s.CooldownSteps
		if step < start {
			return s.BaseLR
		}
		e := float64(step - start)
		es := float64(s.Steps - start)
		decay := math.Pow(1-e/es, s.CooldownPower)
		return decay*(s.BaseLR-s.EndLR) + s.EndLR
	default: // Cosine
		e := float64(step - s.Warmup)
		es := float64(s.Steps - s.Warmup)
		if es <= 0 {
			// OpenCLIP divides by zero here (warm-up covers the whole run);
			// the warm-up has reached the base rate, so keep it.
			return s.BaseLR
		}
		return 0.5 * (1 + math.Cos(math.Pi*e/es)) * s.BaseLR
	}
}
