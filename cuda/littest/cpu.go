package littest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/optim"
	"github.com/litcache/litcache/stages/tune"
)

// Case is one configuration of TestMatchesCPU's random runs.
type Case struct {
	Name         string
	Dedup, Trim  bool
	Head         bool    // a trained image head from D = 48 to E
	ClipNorm     float64 // gradient clipping (0: off)
	Context      int     // the text context (a multiple of 8 or not)
	Batch, Steps int
}

// Cases are the configurations MatchesCPU runs: the production path
// (dedup, trim, several duplicates, a caption count padded to B/8), the
// plain path at a context that is no multiple of 8 (the padded attention
// pitch), the image head, and clipping that binds.
var Cases = []Case{
	{Name: "dedup+trim", Dedup: true, Trim: true, Context: 24, Batch: 16, Steps: 3},
	{Name: "plain-ctx20", Context: 20, Batch: 16, Steps: 3},
	{Name: "head+dedup+trim", Dedup: true, Trim: true, Head: true, Context: 24, Batch: 16, Steps: 3},
	{Name: "clip", Dedup: true, Trim: true, ClipNorm: 0.05, Context: 24, Batch: 16, Steps: 3},
}

// Agreement is the worst difference a case measured.
type Agreement struct {
	Loss, GradNorm, LogitScale, Grads, Weights float64
	GradsName, WeightsName                     string
}

// CPUTolerances bound MatchesCPU's differences (relative; 0 skips a check).
type CPUTolerances struct {
	Loss  float64 // loss, gradient norm and logit scale of each step
	Grads float64 // each tensor's gradient, ‖a−b‖/‖b‖ ...
	// GradSteps: ... at the first GradSteps steps (0: all). In bf16 the
	// weights part after the first update (Adam's steps are about lr
	// whatever the gradient's size, so rounding noise in a tiny gradient
	// moves a weight as far as a real one would), and later gradients
	// measure that, not the step.
	GradSteps int
	Weights   float64 // each tensor after the last step
}

// MatchesCPU runs c on the GPU trainer and on stages/tune's CPU trainer
// (the float32 reference) from the same random weights over the same
// random batches, and compares each step's loss, gradient norm, logit scale
// and every tensor's gradient, and every tensor after the last step. The
// weights are compared only where Adam's steps follow the gradient: the key
// projection's bias (true gradient 0, so rounding noise that Adam turns
// into steps of about lr) is bounded absolutely (keyBiasDrift).
func MatchesCPU(t *testing.T, be *cuda.Backend, c Case, tol CPUTolerances) Agreement {
	t.Helper()
	cpu := backend.NewCPU()
	cfg := clip.Config{EmbedDim: 32, QuickGELU: true, Text: clip.TextConfig{ContextLength: c.Context, VocabSize: 512,
		Width: 64, Heads: 4, Layers: 2, MLPRatio: 4},
		Vision: clip.VisionConfig{ImageSize: 32, PatchSize: 8, Width: 64, Layers: 1, HeadWidth: 16, MLPRatio: 4}}
	rng := rand.New(rand.NewPCG(7, uint64(len(c.Name))))
	B, E, T := c.Batch, cfg.EmbedDim, c.Context
	D := E
	if c.Head {
		D = 48
	}
	// 7 captions of random lengths (start, words, end-of-text), N images
	const K, N = 7, 40
	ids := make([]int32, K*T)
	for k := 0; k < K; k++ {
		n := 2 + rng.IntN(T-2)
		ids[k*T] = int32(cfg.Text.VocabSize - 2)
		for i := 1; i < n; i++ {
			ids[k*T+i] = int32(rng.IntN(cfg.Text.VocabSize - 2))
		}
		ids[k*T+n] = int32(cfg.Text.VocabSize - 1)
	}
	feat := make([]float32, N*D)
	for i := range feat {
		feat[i] = float32(rng.NormFloat64())
	}
	capOfImage := make([]int32, N)
	for i := range capOfImage {
		capOfImage[i] = int32(rng.IntN(K))
	}

	// the CPU trainer
	text := clip.NewRandomTextTower(cpu, cfg, 3)
	defer text.Free()
	var head *tune.ImageHead
	if c.Head {
		head = tune.NewImageHead(cpu, D, E, 5)
	}
	opt := optim.Options{Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.1, ClipNorm: c.ClipNorm}
	sched := optim.Schedule{Kind: optim.Cosine, BaseLR: 2e-3, Warmup: 1, Steps: c.Steps}
	ref, err := tune.NewTrainer(cpu, text, head, tune.InitLogitScale, opt, sched, tune.TrainerOptions{Dedup: c.Dedup, Trim: c.Trim})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Optimizer().Free()
	var ps []cuda.LiTParam
	decay := map[string]bool{}
	for _, n := range ref.Optimizer().Decaying() {
		decay[n] = true
	}
	for _, p := range ref.Params() {
		ps = append(ps, cuda.LiTParam{Name: p.Name, Shape: append([]int(nil), p.Value.Shape()...), Data: cpu.ToFloat32(p.Value, nil), Decay: decay[p.Name]})
	}

	// the GPU trainer
	m := Model(cfg)
	m.ImageDim, m.Head = D, c.Head
	lit, err := cuda.NewLiT(be, m, ps, cuda.LiTOptions{Batch: B, Beta1: opt.Beta1, Beta2: opt.Beta2, Eps: opt.Eps,
		WeightDecay: opt.WeightDecay, ClipNorm: opt.ClipNorm})
	if err != nil {
		t.Fatal(err)
	}
	defer lit.Free()
	rows, err := be.NewDeviceRows(N, D, be.Precision() == cuda.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Free()
	if err := rows.UploadF32(0, feat); err != nil {
		t.Fatal(err)
	}
	caps, err := be.NewDeviceCaptions(ids, K, T, text.PoolPositions(ids, K, T))
	if err != nil {
		t.Fatal(err)
	}
	defer caps.Free()

	var ag Agreement
	for s := 0; s < c.Steps; s++ {
		perm := rng.Perm(N)[:B]
		img, tok := make([]float32, B*D), make([]int32, B*T)
		idx, capOf := make([]int32, B), make([]int32, B)
		for b, i := range perm {
			copy(img[b*D:], feat[i*D:(i+1)*D])
			k := capOfImage[i]
			copy(tok[b*T:], ids[int(k)*T:int(k+1)*T])
			idx[b], capOf[b] = int32(i), k
		}
		want := ref.Step(img, tok, B, T)
		bt := caps.PlanBatch(idx, capOf, c.Dedup, c.Trim)
		bt.LR = sched.LR(s)
		got, err := lit.Step(rows, caps, bt)
		if err != nil {
			t.Fatalf("step %d: %v", s, err)
		}
		if want.Unique != bt.Distinct {
			t.Errorf("step %d: %d distinct captions, the CPU trainer found %d", s, bt.Distinct, want.Unique)
		}
		for _, d := range []struct {
			what      string
			got, want float64
			worst     *float64
		}{{"loss", got.Loss, want.Loss, &ag.Loss}, {"gradient norm", got.GradNorm, want.GradNorm, &ag.GradNorm},
			{"logit scale", got.LogitScale, want.LogitScale, &ag.LogitScale}} {
			e := relDiff(d.got, d.want)
			*d.worst = max(*d.worst, e)
			if !(e <= tol.Loss) {
				t.Errorf("step %d: %s %.8g, CPU %.8g: relative error %.3g > %g", s, d.what, d.got, d.want, e, tol.Loss)
			}
		}
		if tol.Grads > 0 && (tol.GradSteps == 0 || s < tol.GradSteps) {
			g, err := lit.Grads()
			if err != nil {
				t.Fatal(err)
			}
			// the CPU trainer's gradients are left clipped, the GPU's are not
			coef := float32(1)
			if c.ClipNorm > 0 {
				coef = float32(min(1, c.ClipNorm/(want.GradNorm+1e-6)))
			}
			for i, p := range ref.Params() {
				for j := range g[i] {
					g[i][j] *= coef
				}
				e := RelL2(g[i], cpu.ToFloat32(p.Grad, nil))
				if e > ag.Grads {
					ag.Grads, ag.GradsName = e, p.Name
				}
				if !(e <= tol.Grads) {
					t.Errorf("step %d: gradient of %s: relative error %.3g > %g", s, p.Name, e, tol.Grads)
				}
			}
		}
	}
	if tol.Weights > 0 {
		got, err := lit.Params()
		if err != nil {
			t.Fatal(err)
		}
		lrs := make([]float64, c.Steps)
		for s := range lrs {
			lrs[s] = sched.LR(s)
		}
		for i, p := range ref.Params() {
			g, w := got[i].Data, cpu.ToFloat32(p.Value, nil)
			if strings.HasSuffix(p.Name, "attn.in_proj_bias") {
				g, w = keyBiasDrift(t, "after the last step", p.Name, g, w, lrs)
			}
			e := RelL2(g, w)
			if e > ag.Weights {
				ag.Weights, ag.WeightsName = e, p.Name
			}
			if !(e <= tol.Weights) {
				t.Errorf("after %d steps: %s: relative error %.3g > %g", c.Steps, p.Name, e, tol.Weights)
			}
		}
	}
	t.Logf("%s: against the CPU trainer: loss relative error %.3g, gradient norm %.3g, logit scale %.3g, gradients %.3g (%s), weights %.3g (%s)",
		c.Name, ag.Loss, ag.GradNorm, ag.LogitScale, ag.Grads, ag.GradsName, ag.Weights, ag.WeightsName)
	return ag
}

// String names the case.
func (c Case) String() string { return fmt.Sprintf("%s/B%d/ctx%d", c.Name, c.Batch, c.Context) }
