package tune

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/testutil/trainfix"
)

// fixture is the clip-tiny training fixture (internal/testutil/trainfix:
// what it holds, and how the reference run was computed).
type fixture struct{ *trainfix.Fixture }

func loadFixture(t *testing.T) *fixture { return &fixture{trainfix.Load(t)} }

func (fx *fixture) trainer(t *testing.T, be backend.Backend, o TrainerOptions) *Trainer {
	t.Helper()
	text := fx.TextTower(t, be)
	tr, err := NewTrainer(be, text, nil, float32(fx.Ref.LogitScaleInit), fx.Options(), fx.Schedule(), o)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func relDiff(a, b float64) float64 { return math.Abs(a-b) / math.Max(math.Abs(b), 1e-30) }

// relL2 is ‖a−b‖/‖b‖.
func relL2(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		x := float64(a[i]) - float64(b[i])
		d += x * x
		n += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / math.Max(n, 1e-300))
}

// TestTrainingParity replays the fixture's 12 steps in float32 with dedup and
// trim on (the production path) and compares them with the float64 reference.
// Each bound is a few times the difference measured (go test -v -run
// TestTrainingParity ./stages/tune/, the same with LITCACHE_NO_NATIVE=1; the
// test logs the worst of each):
//   - loss per step: measured ≤ 7.7e-7 relative → 5e-6;
//   - lr per step: measured 0 (both sides evaluate the same float64 formula)
//     → 1e-12, a few float64 ulps for another order of operations;
//   - logit_scale per step: measured ≤ 3.9e-8 relative, under one float32
//     ulp at ~2.7 (2.4e-7) → 5e-7, two ulps;
//   - step-0 gradients per tensor (‖a−b‖/‖b‖): measured ≤ 8.6e-7
//     (ln_1.bias; logit_scale's 3.1e-7) → 5e-6;
//   - final weights per tensor: measured ≤ 2.7e-6 (token_embedding; 3.7e-7
//     on a fixture of other shapes) → 1e-5, ten times tighter than
//     FIXTURES.md's "about 1e-4 of the training trajectory" and still
//     ~4× the measured worst. The key-projection bias, whose true gradient is
//     0, is judged on its own (splitKeyBias): its float32 drift (9.5e-6
//     absolute) is what once made in_proj_bias measure 4.2e-5.
//     Weight decay 0.22 instead of 0.2 lands at 1.4e-4 and loss 9.5e-6:
//     caught by both bounds (the former 1e-3 and 1e-4 passed it).
const (
	parityLossTol  = 5e-6
	parityLRTol    = 1e-12
	parityScaleTol = 5e-7
	parityGradTol  = 5e-6
	parityFinalTol = 1e-5
)

func TestTrainingParity(t *testing.T) {
	fx := loadFixture(t)
	be := backend.NewCPU()
	tr := fx.trainer(t, be, TrainerOptions{Dedup: true, Trim: true})
	decaying := map[string]bool{}
	for _, n := range tr.Optimizer().Decaying() {
		decaying[n] = true
	}
	if decaying["logit_scale"] || len(decaying) == 0 {
		t.Fatalf("decaying parameters %v", tr.Optimizer().Decaying())
	}
	// The fixture excludes 2 LayerNorm tensors and up to 6 biases per block
	// (HF names) plus ln_final and logit_scale; every ndim≥2 tensor decays.
	for _, p := range tr.Params() {
		if want := len(p.Value.Shape()) >= 2 && p.Name != "logit_scale"; decaying[p.Name] != want {
			t.Errorf("%s %v: decays %v, want %v", p.Name, p.Value.Shape(), decaying[p.Name], want)
		}
	}

	B, T, E := fx.B, fx.T, fx.E
	var worstLoss, worstScale, worstLR float64
	for s := 0; s < fx.Ref.Steps; s++ {
		st := tr.Step(fx.Img[s*B*E:(s+1)*B*E], fx.IDs[s*B*T:(s+1)*B*T], B, T)
		worstLR = max(worstLR, relDiff(st.LR, fx.Ref.LR[s]))
		worstLoss = max(worstLoss, relDiff(st.Loss, fx.Ref.Loss[s]))
		worstScale = max(worstScale, relDiff(st.LogitScale, fx.Ref.LogitScale[s]))
		if d := relDiff(st.Loss, fx.Ref.Loss[s]); d > parityLossTol {
			t.Errorf("step %d: loss %.8g, fixture %.8g (rel %.2g)", s, st.Loss, fx.Ref.Loss[s], d)
		}
		if d := relDiff(st.LR, fx.Ref.LR[s]); d > parityLRTol {
			t.Errorf("step %d: lr %.8g, fixture %.8g", s, st.LR, fx.Ref.LR[s])
		}
		if d := relDiff(st.LogitScale, fx.Ref.LogitScale[s]); d > parityScaleTol {
			t.Errorf("step %d: logit_scale %.8g, fixture %.8g (rel %.2g)", s, st.LogitScale, fx.Ref.LogitScale[s], d)
		}
		if s == 0 {
			checkTower(t, be, fx, "train_grads_step0.safetensors", tr, true, parityGradTol)
		}
	}
	t.Logf("worst relative difference over %d steps: loss %.2g, lr %.2g, logit_scale %.2g", fx.Ref.Steps, worstLoss, worstLR, worstScale)
	checkTower(t, be, fx, "train_final_weights.safetensors", tr, false, parityFinalTol)
}

// checkTower compares the trainer's text parameters (grads when grads is
// set) with a fixture file in HF names, read through clip.LoadTextTower so
// that HF's layout is mapped to the tower's, and logit_scale.
func checkTower(t *testing.T, be backend.Backend, fx *fixture, file string, tr *Trainer, grads bool, tol float64) {
	t.Helper()
	path := filepath.Join(fx.Dir, file)
	ref, err := clip.LoadTextTower(be, fx.Cfg, path)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	defer ref.Free()
	want := map[string][]float32{}
	for _, p := range ref.Params() {
		want[p.Name] = be.ToFloat32(p.Value, nil)
	}
	worst, worstName := 0.0, ""
	defer func() { t.Logf("%s: worst tensor %s at %.2g relative", file, worstName, worst) }()
	for _, p := range tr.Params() {
		v := p.Value
		if grads {
			v = p.Grad
		}
		got := be.ToFloat32(v, nil)
		if p.Name == "logit_scale" {
			ls, ok, err := clip.ReadLogitScale(path)
			if err != nil || !ok {
				t.Fatalf("%s: logit_scale: %v %v", file, ok, err)
			}
			d := relDiff(float64(got[0]), float64(ls))
			t.Logf("%s: logit_scale at %.2g relative", file, d)
			if d > tol {
				t.Errorf("%s: logit_scale %.8g, fixture %.8g (rel %.2g)", file, got[0], ls, d)
			}
			continue
		}
		w, ok := want[p.Name]
		if !ok {
			t.Errorf("%s: no tensor for %s", file, p.Name)
			continue
		}
		if !grads && strings.HasSuffix(p.Name, "attn.in_proj_bias") {
			got, w = splitKeyBias(t, file, p.Name, got, w, fx.Ref.LR)
		}
		d := relL2(got, w)
		if d > worst {
			worst, worstName = d, p.Name
		}
		if d > tol {
			t.Errorf("%s: %s differs by %.2g relative (tolerance %g)", file, p.Name, d, tol)
		}
	}
}

// splitKeyBias checks the key-projection third of a trained in_proj_bias on
// its own and returns the query and value thirds for the relative check.
// The key bias adds q·b_k to every score of a query's row, which softmax
// ignores: its true gradient is 0, and the float64 reference leaves it where
// it started. In float32 its gradient is rounding noise, which Adam divides by
// √v̂+ε and turns into small steps, so it drifts: measured up to 9.5e-6
// absolute on clip-tiny and 7.2e-5 on a fixture of other shapes
// (testdata/generators/clip_fixture.py), while every other tensor stays
// within 2.7e-6 relative. Judged relatively with the rest, that noise set
// the whole in_proj_bias's 4.2e-5. Bound: 5% of Σ lr, the distance a real
// gradient would move it (Adam's steps are about lr each).
func splitKeyBias(t *testing.T, file, name string, got, want []float32, lrs []float64) (qv, qvWant []float32) {
	t.Helper()
	n := len(want) / 3
	sum := 0.0
	for _, lr := range lrs {
		sum += lr
	}
	bound := 0.05 * sum
	var drift float64
	for i := n; i < 2*n; i++ {
		drift = max(drift, math.Abs(float64(got[i])-float64(want[i])))
	}
	t.Logf("%s: %s key third: %.2g absolute (bound %.2g)", file, name, drift, bound)
	if drift > bound {
		t.Errorf("%s: %s's key-projection bias moved %.2g from the reference, which leaves it (true gradient 0); bound %.2g", file, name, drift, bound)
	}
	cat := func(x []float32) []float32 { return append(append([]float32{}, x[:n]...), x[2*n:]...) }
	return cat(got), cat(want)
}

// TestDedupTrimMatchesPlain runs the same steps on batches with repeated
// captions, with and without dedup and trim, from the same weights, and
// compares loss, logit-scale gradient and every parameter gradient.
// Mathematically they are equal: dedup sums duplicate rows' gradients before
// the tower instead of inside it, and causal attention keeps positions after
// end-of-text out of the pooled output. In float32 only summation order
// differs: measured ≤ 1.2e-6 relative over the loss and every gradient tensor
// (dedup+trim; the test logs it), bound 5e-6.
func TestDedupTrimMatchesPlain(t *testing.T) {
	const dedupTol = 5e-6
	fx := loadFixture(t)
	be := backend.NewCPU()
	B, T, E := 16, fx.T, fx.E
	rng := rand.New(rand.NewPCG(11, 12))
	// 3 distinct captions taken from the fixture (lengths differ), used 6, 5
	// and 5 times; dedup encodes them padded to 4 rows (a multiple of B/8),
	// so the padding path runs too.
	base := fx.IDs[:3*T]
	ids := make([]int32, B*T)
	for b := 0; b < B; b++ {
		copy(ids[b*T:(b+1)*T], base[(b%3)*T:(b%3+1)*T])
	}
	img := make([]float32, B*E)
	for i := range img {
		img[i] = float32(rng.NormFloat64())
	}
	modes := []TrainerOptions{{}, {Dedup: true}, {Trim: true}, {Dedup: true, Trim: true}}
	type outcome struct {
		loss  float64
		u, t  int
		grads map[string][]float32
	}
	var res []outcome
	for _, m := range modes {
		tr := fx.trainer(t, be, m)
		st := tr.Step(img, ids, B, T)
		o := outcome{loss: st.Loss, u: st.Encoded, t: st.T, grads: map[string][]float32{}}
		for _, p := range tr.Params() {
			o.grads[p.Name] = be.ToFloat32(p.Grad, nil)
		}
		res = append(res, o)
	}
	plain := res[0]
	if plain.u != B || plain.t != T {
		t.Fatalf("plain step encoded %d×%d, want %d×%d", plain.u, plain.t, B, T)
	}
	for i, m := range modes[1:] {
		o := res[i+1]
		t.Run(map[bool]string{true: "dedup", false: "nodedup"}[m.Dedup]+"+"+map[bool]string{true: "trim", false: "notrim"}[m.Trim], func(t *testing.T) {
			if m.Dedup && o.u != 4 {
				t.Errorf("dedup encoded %d caption rows, want 4 (3 distinct + 1 pad)", o.u)
			}
			if m.Trim && o.t >= T {
				t.Errorf("trim kept context %d of %d", o.t, T)
			}
			worst := relDiff(o.loss, plain.loss)
			for name, g := range plain.grads {
				worst = max(worst, relL2(o.grads[name], g))
			}
			t.Logf("worst relative difference (loss, gradients): %.2g", worst)
			if d := relDiff(o.loss, plain.loss); d > dedupTol {
				t.Errorf("loss %.9g, plain %.9g (rel %.2g)", o.loss, plain.loss, d)
			}
			for name, g := range plain.grads {
				if d := relL2(o.grads[name], g); d > dedupTol {
					t.Errorf("gradient of %s differs by %.2g relative", name, d)
				}
			}
		})
	}
}

// BenchmarkStep times one LiT step on the clip-tiny fixture batch (8 rows,
// context 16), plain and with dedup + trim; `litcache bench tune` has the
// realistic sizes.
func BenchmarkStep(b *testing.B) {
	t := &testing.T{}
	fx := loadFixture(t)
	be := backend.NewCPU()
	for _, o := range []TrainerOptions{{}, {Dedup: true, Trim: true}} {
		b.Run(fmt.Sprintf("dedup=%v,trim=%v", o.Dedup, o.Trim), func(b *testing.B) {
			tr := fx.trainer(t, be, o)
			B, T, E := fx.B, fx.T, fx.E
			for i := 0; b.Loop(); i++ {
				s := i % fx.Ref.Steps
				tr.Step(fx.Img[s*B*E:(s+1)*B*E], fx.IDs[s*B*T:(s+1)*B*T], B, T)
			}
		})
	}
}
