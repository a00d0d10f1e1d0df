package clip

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/weights"
)

// DefaultLogitScale is CLIP's initial logit scale, ln(1/0.07).
const DefaultLogitScale = 2.659260036932778

// Model is a CLIP model: both towers and the learned logit scale (a log:
// logits are exp(LogitScale)·cosine similarities).
type Model struct {
	Config     Config
	Vision     *VisionTower
	Text       *TextTower
	LogitScale float32
}

// Free releases both towers.
func (m *Model) Free() {
	m.Vision.Free()
	m.Text.Free()
}

// openWeights opens a safetensors weights file as a Source; close it when done.
func openWeights(path string) (*weights.File, error) {
	f, err := weights.Open(path)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err) // "clip: weights: <the file's problem>"
	}
	return f, nil
}

// LoadModel builds both towers of cfg from a safetensors file holding OpenCLIP
// or HF transformers names (told apart from the names themselves). Every
// missing, unexpected or mis-shaped tensor is named in one *WeightsError.
func LoadModel(be backend.Backend, cfg Config, weightsPath string) (*Model, error) {
	src, err := openWeights(weightsPath)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return LoadModelFrom(be, cfg, src, weightsPath)
}

// LoadModelFrom is LoadModel reading from any Source; label names it in errors.
func LoadModelFrom(be backend.Backend, cfg Config, src Source, label string) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	vt, tt := newVisionTower(be, cfg), newTextTower(be, cfg)
	scale, _, err := load(be, src, label, loadRequest{sets: []paramSet{vt.ps, tt.ps}, towers: []string{"vision", "text"}, needsScale: true})
	if err != nil {
		return nil, err
	}
	return &Model{Config: cfg, Vision: vt, Text: tt, LogitScale: scale}, nil
}

// LoadVisionTower builds only the image tower from a full-model weights file
// (the text tower's tensors are skipped).
func LoadVisionTower(be backend.Backend, cfg Config, weightsPath string) (*VisionTower, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	src, err := openWeights(weightsPath)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	vt := newVisionTower(be, cfg)
	if _, _, err := load(be, src, weightsPath, loadRequest{sets: []paramSet{vt.ps}, towers: []string{"vision"}}); err != nil {
		return nil, err
	}
	return vt, nil
}

// LoadTextTower builds the text tower from a file with OpenCLIP or HF names:
// a full model, a text tower SaveTextTower wrote, or a tune checkpoint.
// Image-tower tensors in the file are skipped; logit_scale is read by
// ReadLogitScale.
func LoadTextTower(be backend.Backend, cfg Config, path string) (*TextTower, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	src, err := openWeights(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return LoadTextTowerFrom(be, cfg, src, path)
}

// LoadTextTowerFrom is LoadTextTower reading from any Source.
func LoadTextTowerFrom(be backend.Backend, cfg Config, src Source, label string) (*TextTower, error) {
	tt := newTextTower(be, cfg)
	if _, _, err := load(be, src, label, loadRequest{sets: []paramSet{tt.ps}, towers: []string{"text"}}); err != nil {
		return nil, err
	}
	return tt, nil
}

// ReadLogitScale reads logit_scale from a weights file; ok is false when the
// file has none.
func ReadLogitScale(path string) (scale float32, ok bool, err error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return 0, false, fmt.Errorf("clip: weights: %w", err)
	}
	defer f.Close()
	if _, ok := f.Info("logit_scale"); !ok {
		return 0, false, nil
	}
	d, _, err := f.Float32("logit_scale")
	if err != nil {
		return 0, false, fmt.Errorf("clip: weights %s: logit_scale: %w", path, err)
	}
	if len(d) != 1 {
		return 0, false, fmt.Errorf("clip: weights %s: logit_scale holds %d values, want 1", path, len(d))
	}
	return d[0], true, nil
}

// NewRandomModel builds a model of cfg with OpenCLIP's random initialisation
// (init_parameters of VisionTransformer and TextTransformer), deterministic
// in seed. It panics on an invalid cfg (built-ins are valid).
func NewRandomModel(be backend.Backend, cfg Config, seed int64) *Model {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6c6974636163686))
	vt, tt := newVisionTower(be, cfg), newTextTower(be, cfg)
	initRandom(be, vt.ps, cfg.Vision.Width, cfg.Vision.Layers, rng)
	initRandom(be, tt.ps, cfg.Text.Width, cfg.Text.Layers, rng)
	return &Model{Config: cfg, Vision: vt, Text: tt, LogitScale: DefaultLogitScale}
}

// NewRandomTextTower builds a randomly initialised text tower (see NewRandomModel).
func NewRandomTextTower(be backend.Backend, cfg Config, seed int64) *TextTower {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x74657874))
	tt := newTextTower(be, cfg)
	initRandom(be, tt.ps, cfg.Text.Width, cfg.Text.Layers, rng)
	return tt
}

// initRandom fills a tower's tensors as OpenCLIP's init_parameters does:
// embeddings N(0, 0.02) (positional 0.01), attention in-projections
// N(0, W^-½), out- and MLP output projections N(0, W^-½·(2L)^-½), c_fc
// N(0, (2W)^-½), the final projection N(0, W^-½), layer-norm gains 1, biases 0.
func initRandom(be backend.Backend, ps paramSet, width, layers int, rng *rand.Rand) {
	W, L := float64(width), float64(layers)
	attnStd := math.Pow(W, -0.5)
	projStd := attnStd * math.Pow(2*L, -0.5)
	fcStd := math.Pow(2*W, -0.5)
	for _, r := range ps {
		d := make([]float32, r.size())
		std := 0.0
		fill := 0.0
		switch n := r.name; {
		case hasSuffix(n, "ln_1.weight", "ln_2.weight", "ln_pre.weight", "ln_post.weight", "ln_final.weight"):
			fill = 1
		case hasSuffix(n, ".bias", "in_proj_bias"):
		case hasSuffix(n, "token_embedding.weight"):
			std = 0.02
		case hasSuffix(n, "positional_embedding"):
			std = 0.01
		case hasSuffix(n, "class_embedding", "visual.proj", "text_projection", "in_proj_weight", "conv1.weight"):
			std = attnStd
		case hasSuffix(n, "out_proj.weight", "c_proj.weight"):
			std = projStd
		case hasSuffix(n, "c_fc.weight"):
			std = fcStd
		default:
			panic("clip: no initialisation for " + n)
		}
		for i := range d {
			d[i] = float32(fill + std*rng.NormFloat64())
		}
		*r.value = be.FromFloat32(d, r.shape...)
	}
}

func hasSuffix(s string, suffixes ...string) bool {
	for _, x := range suffixes {
		if len(s) >= len(x) && s[len(s)-len(x):] == x {
			return true
		}
	}
	return false
}

// NewRandomVisionTower builds a randomly initialised image tower (see NewRandomModel).
func NewRandomVisionTower(be backend.Backend, cfg Config, seed int64) *VisionTower {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x766973696f6e))
	vt := newVisionTower(be, cfg)
	initRandom(be, vt.ps, cfg.Vision.Width, cfg.Vision.Layers, rng)
	return vt
}
