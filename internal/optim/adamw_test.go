package optim

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
)

// testParams makes a 2-d weight (decays), a 1-d bias (does not) and a
// logit_scale flagged Decay by mistake (must not decay anyway).
func testParams(be backend.Backend, seed uint64) []clip.Param {
	rng := rand.New(rand.NewPCG(seed, 1))
	mk := func(name string, decay bool, shape ...int) clip.Param {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return clip.Param{Name: name, Value: be.FromFloat32(v, shape...), Grad: be.Zeros(shape...), Decay: decay}
	}
	return []clip.Param{mk("w", true, 3, 4), mk("b", false, 4), mk("logit_scale", true, 1)}
}

func setGrads(be backend.Backend, ps []clip.Param, rng *rand.Rand, scale float64) {
	for _, p := range ps {
		g := make([]float32, p.Grad.Len())
		for i := range g {
			g[i] = float32(rng.NormFloat64() * scale)
		}
		t := be.FromFloat32(g, p.Grad.Shape()...)
		be.Copy(p.Grad, t)
		be.Free(t)
	}
}

// refAdamW is torch.optim.AdamW in float64 for one tensor.
type refAdamW struct{ p, m, v []float64 }

func (r *refAdamW) step(g []float32, lr, b1, b2, eps, wd float64, t int) {
	bc1 := 1 - math.Pow(b1, float64(t))
	bc2 := 1 - math.Pow(b2, float64(t))
	for i := range r.p {
		gi := float64(g[i])
		r.p[i] *= 1 - lr*wd
		r.m[i] = b1*r.m[i] + (1-b1)*gi
		r.v[i] = b2*r.v[i] + (1-b2)*gi*gi
		r.p[i] -= lr / bc1 * r.m[i] / (math.Sqrt(r.v[i])/math.Sqrt(bc2) + eps)
	}
}

// TestAdamWMatchesTorchFormula runs 5 steps and compares with a float64
// reference of PyTorch's AdamW: float32 state drifts by a few ulps per step,
// so 1e-5 relative to the weights' scale (≈1) is ample and still catches a
// wrong decay mask or bias correction (those move weights by ~lr = 1e-2).
func TestAdamWMatchesTorchFormula(t *testing.T) {
	be := backend.NewCPU()
	ps := testParams(be, 7)
	opt := DefaultOptions()
	a, err := NewAdamW(be, ps, opt)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Decaying(); !slices.Equal(got, []string{"w"}) {
		t.Fatalf("decaying params %v, want [w] (1-d bias and logit_scale excluded)", got)
	}
	refs := make([]*refAdamW, len(ps))
	for i, p := range ps {
		v := be.ToFloat32(p.Value, nil)
		r := &refAdamW{p: make([]float64, len(v)), m: make([]float64, len(v)), v: make([]float64, len(v))}
		for j := range v {
			r.p[j] = float64(v[j])
		}
		refs[i] = r
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for s := 1; s <= 5; s++ {
		setGrads(be, ps, rng, 0.1)
		lr := 1e-2 * float64(s)
		for i, p := range ps {
			wd := 0.0
			if i == 0 {
				wd = opt.WeightDecay
			}
			refs[i].step(be.ToFloat32(p.Grad, nil), lr, opt.Beta1, opt.Beta2, opt.Eps, wd, s)
		}
		a.Step(lr)
	}
	if a.Steps() != 5 {
		t.Fatalf("Steps() = %d, want 5", a.Steps())
	}
	for i, p := range ps {
		got := be.ToFloat32(p.Value, nil)
		for j, want := range refs[i].p {
			if math.Abs(float64(got[j])-want) > 1e-5 {
				t.Errorf("%s[%d] = %.8g, reference %.8g", p.Name, j, got[j], want)
			}
		}
	}
}

func TestClipGradNorm(t *testing.T) {
	tests := []struct {
		name     string
		clip     float64
		gradSize float64
		scaled   bool
	}{
		{"above the limit is scaled", 0.5, 1, true},
		{"below the limit is untouched", 100, 1, false},
		{"off", 0, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := backend.NewCPU()
			ps := testParams(be, 1)
			opt := DefaultOptions()
			opt.ClipNorm = tc.clip
			a, err := NewAdamW(be, ps, opt)
			if err != nil {
				t.Fatal(err)
			}
			setGrads(be, ps, rand.New(rand.NewPCG(5, 6)), tc.gradSize)
			before := GradNorm(be, ps)
			got := a.Step(1e-3)
			if got != before {
				t.Fatalf("Step returned norm %g, GradNorm before was %g", got, before)
			}
			after := GradNorm(be, ps)
			want := before
			if tc.scaled {
				// torch: grads *= max_norm / (total_norm + 1e-6)
				want = before * tc.clip / (before + 1e-6)
			}
			if math.Abs(after-want) > 1e-6*want {
				t.Fatalf("norm after clipping %g, want %g (before %g)", after, want, before)
			}
		})
	}
}

// TestAdamWSaveLoad checks that a state saved and loaded into a fresh
// optimizer continues bitwise like the original (resume relies on it).
func TestAdamWSaveLoad(t *testing.T) {
	be := backend.NewCPU()
	psA, psB := testParams(be, 9), testParams(be, 9)
	a, _ := NewAdamW(be, psA, DefaultOptions())
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3 {
		setGrads(be, psA, rng, 0.3)
		a.Step(1e-2)
	}
	path := filepath.Join(t.TempDir(), "optimizer.safetensors")
	if err := a.Save(path); err != nil {
		t.Fatal(err)
	}
	// B gets A's weights and the saved state.
	for i := range psA {
		be.Copy(psB[i].Value, psA[i].Value)
	}
	b, _ := NewAdamW(be, psB, DefaultOptions())
	if err := b.Load(path); err != nil {
		t.Fatal(err)
	}
	if b.Steps() != 3 {
		t.Fatalf("loaded step %d, want 3", b.Steps())
	}
	for range 2 {
		setGrads(be, psA, rng, 0.3)
		for i := range psA {
			be.Copy(psB[i].Grad, psA[i].Grad)
		}
		a.Step(1e-2)
		b.Step(1e-2)
	}
	for i := range psA {
		if !slices.Equal(be.ToFloat32(psA[i].Value, nil), be.ToFloat32(psB[i].Value, nil)) {
			t.Errorf("%s differs after resuming from saved state", psA[i].Name)
		}
	}

	t.Run("mismatched model refused", func(t *testing.T) {
		other := []clip.Param{{Name: "w", Value: be.Zeros(4, 3), Grad: be.Zeros(4, 3)}}
		c, _ := NewAdamW(be, other, DefaultOptions())
		err := c.Load(path)
		if err == nil || !strings.Contains(err.Error(), "shape") {
			t.Fatalf("Load into a differently shaped model: %v, want a shape error", err)
		}
		fewer := []clip.Param{psA[0]}
		d, _ := NewAdamW(be, fewer, DefaultOptions())
		if err := d.Load(path); err == nil || !strings.Contains(err.Error(), "matches no parameter") {
			t.Fatalf("Load with extra tensors: %v, want an error naming the extra tensor", err)
		}
	})
}

func TestNewAdamWErrors(t *testing.T) {
	be := backend.NewCPU()
	p := clip.Param{Name: "w", Value: be.Zeros(2, 2), Grad: be.Zeros(2, 2)}
	tests := []struct {
		name   string
		params []clip.Param
		opt    Options
	}{
		{"duplicate name", []clip.Param{p, p}, DefaultOptions()},
		{"missing grad", []clip.Param{{Name: "x", Value: be.Zeros(2)}}, DefaultOptions()},
		{"bad beta", []clip.Param{p}, Options{Beta1: 1, Beta2: 0.9, Eps: 1e-8}},
		{"bad eps", []clip.Param{p}, Options{Beta1: 0.9, Beta2: 0.9}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewAdamW(be, tc.params, tc.opt); err == nil {
				t.Fatal("NewAdamW succeeded, want an error")
			}
		})
	}
}
