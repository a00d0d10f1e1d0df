// Package tune is the LiT training stage: the text tower (and logit scale) is
// trained with a symmetric InfoNCE loss against image embeddings read from the
// cache, the image tower locked (arXiv 2111.07991). It writes a run folder:
//
//	OUT/config.json                      this Config (the run's identity for --resume)
//	OUT/metrics.jsonl                    a line per step and per epoch
//	OUT/checkpoints/step-NNNNNNN/        every CheckpointEvery steps and at each epoch end
//	OUT/final/open_clip_model.safetensors + open_clip_config.json   the full model: the cache's
//	                                     locked image tower + the tuned text tower (TextOnly: the text tower alone)
//
// Captions: each cached row's label (its iNat category id) picks the caption
// of that class in classes.json (Captions = "classes", the default), so a new
// classes.json — another caption template — retrains on the same cache
// without re-extracting. Captions = "cache" uses the caption text stored with
// each row by extract instead.
package tune

import (
	"fmt"
	"io"
	"math"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/optim"
)

// Precisions of --precision.
const (
	PrecisionBF16 = "bf16"
	PrecisionFP32 = "fp32"
)

// RandomInit is the Weights value that spells out the default: a random
// initialisation from Seed (random:SEED fixes another seed).
const RandomInit = "random"

// Caption sources.
const (
	CaptionsFromClasses = "classes"
	CaptionsFromCache   = "cache"
)

// Config is one tuning run.
type Config struct {
	Cache             string // training cache folder
	Split             string // the training cache's split (store.SelectSplit, role "train": "" = its only split, else "train")
	ValCache          string // optional val cache: zero-shot top-1/top-5 and val loss each epoch
	ValSplit          string // the val cache's split (store.SelectSplit, role "val": "" = its only split, else "val")
	ExpectFingerprint string // when set, caches made by another image tower are refused
	Classes           string // classes.json: captions and the zero-shot classifier's classes
	Captions          string // CaptionsFromClasses (default) or CaptionsFromCache
	Model             string // OpenCLIP model config: built-in name or JSON path
	Weights           string // text weights to start from (OpenCLIP or HF names), or random:SEED; "" or RandomInit = random init from Seed
	Vocab             string // BPE vocabulary file; "" = CLIP's bpe_simple_vocab_16e6.txt.gz, built in
	ContextLen        int    // token context; 0 = the text config's context_length
	Out               string // run folder

	Epochs    int
	BatchSize int
	// Schedule: LR base rate, Warmup steps of linear warm-up, Schedule kind
	// (cosine, const, const-cooldown) and, for const-cooldown, its tail.
	LR            float64
	Warmup        int
	Schedule      string
	CooldownSteps int
	CooldownPower float64
	CooldownEndLR float64

	// AdamW (OpenCLIP's defaults) and optional global gradient-norm clipping (0 = off).
	WeightDecay float64
	Beta1       float64
	Beta2       float64
	Eps         float64
	GradClip    float64

	// LogitScale is the initial log temperature; 0 takes the pretrained
	// weights' logit_scale when Weights has one, else ln(1/0.07).
	LogitScale float64
	Seed       uint64
	// ImageHead trains a linear map on the image side (off: LiT locks it).
	ImageHead bool
	// NewProjection starts text_projection afresh at the cache's dim, the
	// rest of the text tower from Weights (pretrained; see textdim.go).
	NewProjection bool
	// Dedup encodes each distinct caption of a batch once; Trim cuts the
	// context to the batch's longest caption. Both leave the result unchanged.
	Dedup bool
	Trim  bool
	// Shuffle is the epoch order: ShuffleGlobal ("" too) or ShuffleBlock,
	// which reads the cache's parts ShuffleWindow at a time
	// (DefaultShuffleWindow when 0); order.go.
	Shuffle       string
	ShuffleWindow int

	// TextOnly writes final/ as the text tower alone (the form before full
	// models). By default final/ holds a full OpenCLIP model: the cache's
	// locked image tower (found from its manifest, FindImageTower) and the
	// tuned text tower. ImageHead implies it: a trained head has no place
	// in an OpenCLIP model.
	TextOnly bool

	CheckpointEvery int  // steps between checkpoints (0: epoch ends only)
	Resume          bool // continue from OUT's latest checkpoint
	// StopAfter ends the run after this many steps in total (0: run every
	// epoch), with a checkpoint, as a job hitting its time limit would.
	StopAfter int
	// EvalTemplates build the per-epoch zero-shot classifier (nil: each class's caption).
	EvalTemplates []string

	// Precision is the GPU's arithmetic: PrecisionBF16 (bf16 compute, float32
	// master weights, moments, loss and softmax statistics) or PrecisionFP32;
	// "" takes the backend's (a CUDA backend's precision, float32 on the CPU,
	// which has float32 only).
	Precision string `json:",omitempty"`
	// CUDAGraphs captures each step shape as a CUDA graph and replays it
	// (GPU only; off until measured to help, issue 11).
	CUDAGraphs bool `json:",omitempty"`

	Backend backend.Backend `json:"-"` // nil: the CPU backend
	Log     io.Writer       `json:"-"` // progress lines; nil: stderr
	Quiet   bool            `json:"-"` // no progress bar or log lines
}

// DefaultConfig is the paper-faithful setting (DESIGN.md decision 6):
// OpenCLIP's AdamW, linear warm-up then cosine, dedup and trim on.
func DefaultConfig() Config {
	o := optim.DefaultOptions()
	return Config{
		Captions:      CaptionsFromClasses,
		Model:         "ViT-B-32",
		Epochs:        1,
		BatchSize:     256,
		LR:            1e-3,
		Warmup:        1000,
		Schedule:      string(optim.Cosine),
		CooldownPower: 1,
		WeightDecay:   o.WeightDecay,
		Beta1:         o.Beta1,
		Beta2:         o.Beta2,
		Eps:           o.Eps,
		Seed:          0,
		Dedup:         true,
		Trim:          true,
		Shuffle:       ShuffleGlobal,
	}
}

// Validate reports a Config that cannot run, naming the setting.
func (c Config) Validate() error {
	switch {
	case c.Cache == "":
		return fmt.Errorf("tune: no training cache (--cache)")
	case c.Classes == "":
		return fmt.Errorf("tune: no classes file (--classes)")
	case c.Model == "":
		return fmt.Errorf("tune: no model config (--model)")
	case c.Out == "":
		return fmt.Errorf("tune: no output folder (--out)")
	case c.Epochs < 1:
		return fmt.Errorf("tune: --epochs %d: need at least 1", c.Epochs)
	case c.BatchSize < 2:
		return fmt.Errorf("tune: --batch-size %d: a contrastive batch needs at least 2 rows", c.BatchSize)
	case c.Warmup < 0:
		return fmt.Errorf("tune: --warmup %d < 0", c.Warmup)
	case c.CheckpointEvery < 0:
		return fmt.Errorf("tune: --checkpoint-every %d < 0", c.CheckpointEvery)
	case c.StopAfter < 0:
		return fmt.Errorf("tune: stop after %d steps < 0", c.StopAfter)
	case c.ContextLen < 0:
		return fmt.Errorf("tune: --context %d < 0", c.ContextLen)
	case c.Captions != CaptionsFromClasses && c.Captions != CaptionsFromCache:
		return fmt.Errorf("tune: --captions %q: want %q or %q", c.Captions, CaptionsFromClasses, CaptionsFromCache)
	case math.IsNaN(c.LogitScale) || c.LogitScale < 0 || c.LogitScale > float64(MaxLogitScale):
		return fmt.Errorf("tune: initial logit scale %g outside [0, ln 100]", c.LogitScale)
	}
	switch c.Precision {
	case "", PrecisionBF16, PrecisionFP32:
	default:
		return fmt.Errorf("tune: --precision %q: want %q or %q", c.Precision, PrecisionBF16, PrecisionFP32)
	}
	if err := validShuffle(c.Shuffle); err != nil {
		return err
	}
	if c.ShuffleWindow < 0 {
		return fmt.Errorf("tune: shuffle window %d < 0", c.ShuffleWindow)
	}
	if _, _, err := clip.ParseRandomWeights(c.Weights); err != nil {
		return fmt.Errorf("tune: --weights: %w", err)
	}
	if c.NewProjection && c.randomText() {
		return fmt.Errorf("tune: --new-projection needs pretrained --weights (a random-init text tower's projection is new already)")
	}
	if _, err := optim.ParseKind(c.Schedule); err != nil {
		return fmt.Errorf("tune: --schedule: %w", err)
	}
	if err := c.optimOptions().Validate(); err != nil {
		return fmt.Errorf("tune: %w", err)
	}
	return nil
}

// backend is the configured backend or the CPU one.
func (c Config) backend() backend.Backend {
	if c.Backend != nil {
		return c.Backend
	}
	return backend.NewCPU()
}

func (c Config) optimOptions() optim.Options {
	return optim.Options{Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay, ClipNorm: c.GradClip}
}

func (c Config) schedule(steps int) (optim.Schedule, error) {
	k, err := optim.ParseKind(c.Schedule)
	if err != nil {
		return optim.Schedule{}, fmt.Errorf("tune: %w", err)
	}
	s := optim.Schedule{Kind: k, BaseLR: c.LR, Warmup: c.Warmup, Steps: steps,
		CooldownSteps: c.CooldownSteps, CooldownPower: c.CooldownPower, EndLR: c.CooldownEndLR}
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("tune: %w", err)
	}
	return s, nil
}

// identity is the part of the Config a resumed run must share with the run
// it continues: anything that changes the trajectory.
type identity struct {
	Cache, Split, Classes, Captions, Model, Weights, Vocab string
	ContextLen, Epochs, BatchSize, Warmup                  int
	LR                                                     float64
	Schedule                                               string
	CooldownSteps                                          int
	CooldownPower, CooldownEndLR                           float64
	WeightDecay, Beta1, Beta2, Eps, GradClip, LogitScale   float64
	Seed                                                   uint64
	ImageHead                                              bool
	// Shuffle and its window ("global" and 0 for runs from before they
	// existed): the data order is part of the trajectory.
	Shuffle       string `json:",omitempty"`
	ShuffleWindow int    `json:",omitempty"`
	// NewProjection (false for runs from before it existed).
	NewProjection bool `json:",omitempty"`
}

func (c Config) identity() identity {
	id := identity{c.Cache, c.Split, c.Classes, c.Captions, c.Model, c.Weights, c.Vocab,
		c.ContextLen, c.Epochs, c.BatchSize, c.Warmup, c.LR, c.Schedule, c.CooldownSteps,
		c.CooldownPower, c.CooldownEndLR, c.WeightDecay, c.Beta1, c.Beta2, c.Eps, c.GradClip,
		c.LogitScale, c.Seed, c.ImageHead, "", 0, c.NewProjection}
	if c.shuffle() == ShuffleBlock {
		// The global order is left out, so a run from before Shuffle existed
		// resumes unchanged.
		id.Shuffle, id.ShuffleWindow = ShuffleBlock, c.shuffleWindow()
	}
	return id
}
