// Package trainfix loads the clip-tiny training fixture (testdata/clip-tiny,
// testdata/FIXTURES.md) for the trainers' parity tests: the CPU trainer's
// (stages/tune) and the GPU trainer's (cuda/littest).
package trainfix

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/optim"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/testutil"
)

// Fixture is a 12-step LiT run of the text tower alone, computed by HF
// transformers in float64. For step s, Img[s] (B,E) are fixed, L2-normalised
// image features (the cache's role) against token rows IDs[s] (B,T). Loss:
// symmetric InfoNCE with logits = exp(logit_scale)·img·normalize(text)ᵀ,
// labels 0..B-1. AdamW with the JSON's β and eps, weight decay on every
// parameter except ndim<2 ones and logit_scale; lr = base·(s+1)/warmup, then
// OpenCLIP's cosine; logit_scale starts at ln(1/0.07), is trained, and is
// clamped to [0, ln 100] after each step. train_grads_step0 holds step 0's
// gradients and train_final_weights the weights after the last step, HF
// names. Every text parameter is trained, token and positional embeddings
// and the projection included.
type Fixture struct {
	Dir  string
	Ref  Reference
	Cfg  clip.Config
	Img  []float32 // (steps,B,E)
	IDs  []int32   // (steps,B,T)
	B, T int
	E    int
}

// Reference is train_reference.json.
type Reference struct {
	Loss           []float64 `json:"loss"`
	LR             []float64 `json:"lr"`
	LogitScale     []float64 `json:"logit_scale"`
	Batch          int       `json:"batch"`
	Steps          int       `json:"steps"`
	Warmup         int       `json:"warmup"`
	BaseLR         float64   `json:"base_lr"`
	WeightDecay    float64   `json:"weight_decay"`
	Betas          []float64 `json:"betas"`
	Eps            float64   `json:"eps"`
	LogitScaleInit float64   `json:"logit_scale_init"`
	DecayExcluded  []string  `json:"decay_excluded"`
}

// Load reads the fixture from testutil.FixtureDir (LITCACHE_FIXTURE_DIR, else
// testdata/clip-tiny), taking its shapes from the files; a missing or
// inconsistent file fails the test.
func Load(tb testing.TB) *Fixture {
	tb.Helper()
	dir := testutil.FixtureDir(tb)
	fx := &Fixture{Dir: dir}
	raw, err := os.ReadFile(filepath.Join(dir, "train_reference.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fx.Ref); err != nil {
		tb.Fatal(err)
	}
	if fx.Cfg, err = clip.LoadConfig(filepath.Join(dir, "open_clip_config.json")); err != nil {
		tb.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "train_inputs.safetensors"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	img, ishape, err := f.Float32("image_features")
	if err != nil {
		tb.Fatal(err)
	}
	ids, tshape, err := f.Int32s("input_ids")
	if err != nil {
		tb.Fatal(err)
	}
	if len(ishape) != 3 || len(tshape) != 3 || ishape[0] != fx.Ref.Steps || tshape[0] != fx.Ref.Steps ||
		ishape[1] != fx.Ref.Batch || tshape[1] != fx.Ref.Batch {
		tb.Fatalf("fixture inputs %v and %v do not match %d steps of batch %d", ishape, tshape, fx.Ref.Steps, fx.Ref.Batch)
	}
	fx.Img, fx.IDs, fx.B, fx.T, fx.E = img, ids, ishape[1], tshape[2], ishape[2]
	return fx
}

// Options are the fixture's AdamW settings.
func (fx *Fixture) Options() optim.Options {
	return optim.Options{Beta1: fx.Ref.Betas[0], Beta2: fx.Ref.Betas[1], Eps: fx.Ref.Eps, WeightDecay: fx.Ref.WeightDecay}
}

// Schedule is the fixture's learning-rate schedule.
func (fx *Fixture) Schedule() optim.Schedule {
	return optim.Schedule{Kind: optim.Cosine, BaseLR: fx.Ref.BaseLR, Warmup: fx.Ref.Warmup, Steps: fx.Ref.Steps}
}

// TextTower loads the fixture's starting weights (OpenCLIP names) on be.
func (fx *Fixture) TextTower(tb testing.TB, be backend.Backend) *clip.TextTower {
	tb.Helper()
	text, err := clip.LoadTextTower(be, fx.Cfg, filepath.Join(fx.Dir, "weights_openclip.safetensors"))
	if err != nil {
		tb.Fatal(err)
	}
	return text
}
