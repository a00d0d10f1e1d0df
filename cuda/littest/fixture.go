// Package littest holds the tests of the GPU LiT trainer (cuda.LiT) that run
// both on the CPU emulator (cuda/emu) and on a GPU (cuda/towers, in the GPU
// check): trajectory parity with the clip-tiny training fixture, agreement
// with the CPU trainer (stages/tune) on random batches, stable device
// memory over steps of changing shapes, CUDA graphs against direct launches,
// and out-of-memory errors naming what was asked for. Each takes the
// backend to run on; the callers open it (emulated or real).
package littest

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/optim"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/testutil"
)

// Fixture is testdata/clip-tiny's 12-step LiT run of the text tower (HF
// transformers in float64; testdata/FIXTURES.md): for step s, fixed
// L2-normalised image features Img[s] (B,E) against token rows IDs[s]
// (B,T); AdamW with the JSON's hyper-parameters, OpenCLIP's cosine schedule
// after a linear warm-up, logit_scale trained and clamped to [0, ln 100].
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
}

// LoadFixture reads the fixture; a missing file fails the test.
func LoadFixture(tb testing.TB) *Fixture {
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

// TextTower loads the fixture's starting weights on the CPU.
func (fx *Fixture) TextTower(tb testing.TB) *clip.TextTower {
	tb.Helper()
	text, err := clip.LoadTextTower(backend.NewCPU(), fx.Cfg, filepath.Join(fx.Dir, "weights_openclip.safetensors"))
	if err != nil {
		tb.Fatal(err)
	}
	return text
}

// Model is the LiT shape of a clip config (no image head: D = E).
func Model(cfg clip.Config) cuda.LiTModel {
	t := cfg.Text
	return cuda.LiTModel{Vocab: t.VocabSize, Context: t.ContextLength, Width: t.Width, Heads: t.Heads,
		Layers: t.Layers, Hidden: t.Hidden(), Embed: cfg.EmbedDim, Act: cfg.Act(), Eps: clip.LayerNormEps,
		ImageDim: cfg.EmbedDim}
}

// Params lists a host text tower's tensors (and logit_scale) as the
// trainer takes them, decay by OpenCLIP's rule.
func Params(tb testing.TB, text *clip.TextTower, logitScale float32) []cuda.LiTParam {
	tb.Helper()
	be := backend.NewCPU()
	var ps []cuda.LiTParam
	for _, p := range text.Params() {
		shape := append([]int(nil), p.Value.Shape()...)
		ps = append(ps, cuda.LiTParam{Name: p.Name, Shape: shape, Data: be.ToFloat32(p.Value, nil), Decay: optim.Decays(p.Name, shape)})
	}
	return append(ps, cuda.LiTParam{Name: "logit_scale", Shape: []int{1}, Data: []float32{logitScale}})
}

// RelL2 is ‖a−b‖/‖b‖.
func RelL2(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		x := float64(a[i]) - float64(b[i])
		d += x * x
		n += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / math.Max(n, 1e-300))
}

func relDiff(a, b float64) float64 { return math.Abs(a-b) / math.Max(math.Abs(b), 1e-30) }
