package cli

import (
	"fmt"
	"math"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/optim"
	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/stages/sweep"
	"github.com/litcache/litcache/stages/tune"
	"github.com/litcache/litcache/store"
)

// tuneFlag is one of tune's training flags. sweep takes every one of them
// (sweepFlags builds its flags from this list), so a new tune flag reaches
// sweep without a second edit.
type tuneFlag struct {
	flag cli.Flag
	// set copies the flag's value into the config.
	set func(c *cli.Context, cfg *tune.Config)
	// axis, when not nil, makes the flag a comma-separated list in sweep,
	// one grid axis: each value is a member.
	axis func(c *cli.Context, g *sweep.Grid) error
}

// tuneFlags are the flags of one tuning run, with tune's defaults (d); tune
// adds --out, --resume and the device flags, sweep its own --out and member
// selection.
func tuneFlags(d tune.Config) []tuneFlag {
	var kinds []string
	for _, k := range optim.Kinds() {
		kinds = append(kinds, string(k))
	}
	str := func(name string, dst func(*tune.Config) *string) func(*cli.Context, *tune.Config) {
		return func(c *cli.Context, cfg *tune.Config) { *dst(cfg) = c.String(name) }
	}
	num := func(name string, dst func(*tune.Config) *int) func(*cli.Context, *tune.Config) {
		return func(c *cli.Context, cfg *tune.Config) { *dst(cfg) = c.Int(name) }
	}
	float := func(name string, dst func(*tune.Config) *float64) func(*cli.Context, *tune.Config) {
		return func(c *cli.Context, cfg *tune.Config) { *dst(cfg) = c.Float64(name) }
	}
	flag := func(name string, dst func(*tune.Config) *bool, invert bool) func(*cli.Context, *tune.Config) {
		return func(c *cli.Context, cfg *tune.Config) { *dst(cfg) = c.Bool(name) != invert }
	}
	model := modelFlag("its text_cfg is the text tower trained")
	model.Value = d.Model
	return []tuneFlag{
		{flag: &cli.StringFlag{Name: "cache", Usage: "training cache folder (from litcache extract)"},
			set:  str("cache", func(c *tune.Config) *string { return &c.Cache }),
			axis: func(c *cli.Context, g *sweep.Grid) error { g.Cache = splitList(c.String("cache")); return nil }},
		{flag: splitFlag("split", store.SplitTrain, "the training cache"),
			set: str("split", func(c *tune.Config) *string { return &c.Split })},
		{flag: &cli.StringFlag{Name: "val-cache", Usage: "val cache folder: zero-shot top-1/top-5 and val loss each epoch"},
			set:  str("val-cache", func(c *tune.Config) *string { return &c.ValCache }),
			axis: func(c *cli.Context, g *sweep.Grid) error { g.ValCache = splitList(c.String("val-cache")); return nil }},
		{flag: splitFlag("val-split", store.SplitVal, "the val cache"),
			set: str("val-split", func(c *tune.Config) *string { return &c.ValSplit })},
		{flag: &cli.StringFlag{Name: "classes", Usage: "classes.json (from litcache caption): captions and zero-shot classes"},
			set:  str("classes", func(c *tune.Config) *string { return &c.Classes }),
			axis: func(c *cli.Context, g *sweep.Grid) error { g.Classes = splitList(c.String("classes")); return nil }},
		{flag: &cli.StringFlag{Name: "captions", Value: d.Captions, Usage: `"classes" (caption of each row's class) or "cache" (caption stored with the row)`},
			set: str("captions", func(c *tune.Config) *string { return &c.Captions })},
		{flag: model, set: str("model", func(c *tune.Config) *string { return &c.Model })},
		{flag: tuneWeightsFlag(),
			set:  str("weights", func(c *tune.Config) *string { return &c.Weights }),
			axis: func(c *cli.Context, g *sweep.Grid) error { g.Weights = splitList(c.String("weights")); return nil }},
		{flag: vocabFlag(""), set: func(c *cli.Context, cfg *tune.Config) { cfg.Vocab = vocabPath(c) }},
		{flag: &cli.IntFlag{Name: "context", Usage: "token context", DefaultText: "the model's context_length"},
			set: num("context", func(c *tune.Config) *int { return &c.ContextLen })},
		{flag: &cli.IntFlag{Name: "epochs", Value: d.Epochs, Usage: "passes over the training cache"},
			set:  num("epochs", func(c *tune.Config) *int { return &c.Epochs }),
			axis: func(c *cli.Context, g *sweep.Grid) (err error) { g.Epochs, err = intList(c, "epochs"); return }},
		{flag: &cli.IntFlag{Name: "batch-size", Value: d.BatchSize, Usage: "images per step (the last partial batch of an epoch is dropped)"},
			set:  num("batch-size", func(c *tune.Config) *int { return &c.BatchSize }),
			axis: func(c *cli.Context, g *sweep.Grid) (err error) { g.BatchSize, err = intList(c, "batch-size"); return }},
		{flag: &cli.Float64Flag{Name: "lr", Value: d.LR, Usage: "base learning rate"},
			set:  float("lr", func(c *tune.Config) *float64 { return &c.LR }),
			axis: func(c *cli.Context, g *sweep.Grid) (err error) { g.LR, err = floatList(c, "lr"); return }},
		{flag: &cli.IntFlag{Name: "warmup", Value: d.Warmup, Usage: "linear warm-up steps"},
			set:  num("warmup", func(c *tune.Config) *int { return &c.Warmup }),
			axis: func(c *cli.Context, g *sweep.Grid) (err error) { g.Warmup, err = intList(c, "warmup"); return }},
		{flag: &cli.StringFlag{Name: "schedule", Value: d.Schedule, Usage: "learning-rate schedule after warm-up: " + strings.Join(kinds, ", ")},
			set:  str("schedule", func(c *tune.Config) *string { return &c.Schedule }),
			axis: func(c *cli.Context, g *sweep.Grid) error { g.Schedule = splitList(c.String("schedule")); return nil }},
		{flag: &cli.IntFlag{Name: "cooldown-steps", Usage: "steps of the final cool-down (--schedule const-cooldown)"},
			set: num("cooldown-steps", func(c *tune.Config) *int { return &c.CooldownSteps })},
		{flag: &cli.Float64Flag{Name: "cooldown-power", Value: d.CooldownPower, Usage: "power of the cool-down, 1 = linear (--schedule const-cooldown)"},
			set: float("cooldown-power", func(c *tune.Config) *float64 { return &c.CooldownPower })},
		{flag: &cli.Float64Flag{Name: "cooldown-end-lr", Usage: "learning rate at the end of the cool-down (--schedule const-cooldown)"},
			set: float("cooldown-end-lr", func(c *tune.Config) *float64 { return &c.CooldownEndLR })},
		{flag: &cli.Float64Flag{Name: "wd", Value: d.WeightDecay, Usage: "AdamW weight decay (not on gains, biases, logit_scale)"},
			set:  float("wd", func(c *tune.Config) *float64 { return &c.WeightDecay }),
			axis: func(c *cli.Context, g *sweep.Grid) (err error) { g.WeightDecay, err = floatList(c, "wd"); return }},
		{flag: &cli.Float64Flag{Name: "beta1", Value: d.Beta1, Usage: "AdamW β1"},
			set: float("beta1", func(c *tune.Config) *float64 { return &c.Beta1 })},
		{flag: &cli.Float64Flag{Name: "beta2", Value: d.Beta2, Usage: "AdamW β2"},
			set: float("beta2", func(c *tune.Config) *float64 { return &c.Beta2 })},
		{flag: &cli.Float64Flag{Name: "eps", Value: d.Eps, Usage: "AdamW eps"},
			set: float("eps", func(c *tune.Config) *float64 { return &c.Eps })},
		{flag: &cli.Float64Flag{Name: "grad-clip", Usage: "clip the global gradient L2 norm to this", DefaultText: "off"},
			set: float("grad-clip", func(c *tune.Config) *float64 { return &c.GradClip })},
		{flag: &cli.Float64Flag{Name: "logit-scale", Usage: "initial log temperature", DefaultText: "the weights' logit_scale, else ln(1/0.07)"},
			set: float("logit-scale", func(c *tune.Config) *float64 { return &c.LogitScale })},
		{flag: &cli.Uint64Flag{Name: "seed", Value: d.Seed, Usage: "seed of the initialisation, data order and views"},
			set: func(c *cli.Context, cfg *tune.Config) { cfg.Seed = c.Uint64("seed") },
			axis: func(c *cli.Context, g *sweep.Grid) error {
				seeds, err := intList(c, "seed")
				for _, s := range seeds {
					if s < 0 {
						return fmt.Errorf("--seed %d < 0", s)
					}
					g.Seed = append(g.Seed, uint64(s))
				}
				return err
			}},
		{flag: &cli.BoolFlag{Name: "image-head", Usage: "train a linear head on the image side (off: LiT locks it)"},
			set: flag("image-head", func(c *tune.Config) *bool { return &c.ImageHead }, false)},
		{flag: &cli.BoolFlag{Name: "new-projection", Usage: "with pretrained --weights: a fresh text_projection to the cache's dim (OpenCLIP's init), the rest of the text tower from --weights; for a cache of another tower (DINOv2, Swin)"},
			set: flag("new-projection", func(c *tune.Config) *bool { return &c.NewProjection }, false)},
		{flag: &cli.BoolFlag{Name: "text-only", Usage: "final/ holds the tuned text tower alone, not the full model with the cache's image tower (implied by --image-head)"},
			set: flag("text-only", func(c *tune.Config) *bool { return &c.TextOnly }, false)},
		{flag: &cli.BoolFlag{Name: "no-dedup", Usage: "encode every row's caption, duplicates too (same result, slower)"},
			set: flag("no-dedup", func(c *tune.Config) *bool { return &c.Dedup }, true)},
		{flag: &cli.BoolFlag{Name: "no-trim", Usage: "run the text tower on the full context (same result, slower)"},
			set: flag("no-trim", func(c *tune.Config) *bool { return &c.Trim }, true)},
		{flag: &cli.StringFlag{Name: "shuffle", Value: d.Shuffle, Usage: `epoch order: "global" (uniform over all images) or "block" (parts shuffled, then images within windows of 8 parts: sequential reads for a cache larger than memory)`},
			set: str("shuffle", func(c *tune.Config) *string { return &c.Shuffle })},
		{flag: &cli.IntFlag{Name: "checkpoint-every", Usage: "steps between checkpoints", DefaultText: "at epoch ends only"},
			set: num("checkpoint-every", func(c *tune.Config) *int { return &c.CheckpointEvery })},
		{flag: &cli.IntFlag{Name: "stop-after", Usage: "stop after this many steps in total, with a checkpoint", DefaultText: "run every epoch"},
			set: num("stop-after", func(c *tune.Config) *int { return &c.StopAfter })},
		{flag: &cli.StringFlag{Name: "eval-templates", Value: "caption", Usage: `per-epoch zero-shot prompts (with --val-cache): "caption", "openai", or a file of templates`},
			set: func(*cli.Context, *tune.Config) {}}, // read by tuneConfig: it can fail
		{flag: &cli.StringFlag{Name: "expect-fingerprint", Usage: "refuse caches made by another image tower"},
			set: str("expect-fingerprint", func(c *tune.Config) *string { return &c.ExpectFingerprint })},
		{flag: &cli.StringFlag{Name: "precision", Usage: "arithmetic on the GPU: `bf16|fp32` (bf16: tensor-core compute with float32 master weights, Adam moments, loss and softmax statistics); the CPU trains in fp32",
			DefaultText: "bf16 on the GPU, fp32 on the CPU"},
			set: str("precision", func(c *tune.Config) *string { return &c.Precision })},
		{flag: &cli.BoolFlag{Name: "cuda-graphs", Usage: "capture each step shape as a CUDA graph and replay it (GPU; off until the GPU check measures it helping)"},
			set: flag("cuda-graphs", func(c *tune.Config) *bool { return &c.CUDAGraphs }, false)},
		{flag: &cli.BoolFlag{Name: "quiet", Usage: "no progress output"},
			set: flag("quiet", func(c *tune.Config) *bool { return &c.Quiet }, false)},
	}
}

// tuneRequired are the flags no tuning run goes without.
var tuneRequired = []string{"cache", "classes", "out"}

// tunePaths are the flags that name inputs, checked before the device opens.
var tunePaths = []string{"cache", "val-cache", "classes", "weights", "vocab"}

// tuneConfig reads the training flags (all but the axes when sweeping) into
// a config on d and checks what needs another flag; the device is opened
// later, after every flag check.
func tuneConfig(c *cli.Context, d tune.Config, flags []tuneFlag, sweeping bool) (tune.Config, error) {
	cfg := d
	for _, f := range flags {
		if !sweeping || f.axis == nil {
			f.set(c, &cfg)
		}
	}
	cfg.Log = c.App.ErrWriter
	hasVal := cfg.ValCache != "" || (sweeping && c.String("val-cache") != "")
	coolable := strings.Contains(c.String("schedule"), string(optim.ConstCooldown))
	if err := checkDependencies(c,
		dependency{"val-split", hasVal, "without --val-cache"},
		dependency{"eval-templates", hasVal, "without --val-cache"},
		dependency{"cooldown-steps", coolable, "without --schedule " + string(optim.ConstCooldown)},
		dependency{"cooldown-power", coolable, "without --schedule " + string(optim.ConstCooldown)},
		dependency{"cooldown-end-lr", coolable, "without --schedule " + string(optim.ConstCooldown)},
	); err != nil {
		return cfg, err
	}
	if _, err := clip.LoadConfig(cfg.Model); err != nil {
		return cfg, fmt.Errorf("%s: --model: %w", commandPath(c), err)
	}
	if t := c.String("eval-templates"); t != "caption" {
		tm, err := evaluate.ResolveTemplates(t)
		if err != nil {
			return cfg, fmt.Errorf("%s: --eval-templates: %w", commandPath(c), err)
		}
		cfg.EvalTemplates = tm
	}
	return cfg, nil
}

func tuneCommand() *cli.Command {
	d := tune.DefaultConfig()
	shared := tuneFlags(d)
	flags := make([]cli.Flag, 0, len(shared)+5)
	for _, f := range shared {
		flags = append(flags, f.flag)
	}
	flags = append(flags,
		&cli.StringFlag{Name: "out", Usage: "run folder"},
		&cli.BoolFlag{Name: "resume", Usage: "continue from OUT's latest checkpoint"})
	flags = append(flags, deviceFlags("the text tower's training on the GPU (--precision), the cache resident there")...)
	return withRequired(&cli.Command{
		Name:  "tune",
		Usage: "LiT: train the text tower against cached image embeddings (image tower locked)",
		UsageText: `litcache tune --cache DIR --classes classes.json --model CONFIG --out DIR [options]

   # from scratch, the paper's recipe on a ViT-B/32 cache, zero-shot on val each epoch
   litcache tune --cache cache/train --val-cache cache/val --classes classes.json \
       --model ViT-B-32 --epochs 18 --batch-size 1024 --lr 1e-3 --warmup 1000 --out runs/lit
   # from pretrained OpenCLIP text weights, checkpoint every 500 steps; rerun with --resume after a stop
   litcache tune ... --weights open_clip_model.safetensors --checkpoint-every 500 --out runs/lit-pre
   litcache tune ... --weights open_clip_model.safetensors --checkpoint-every 500 --out runs/lit-pre --resume`,
		Description: `Trains the text tower (and the logit scale) with the symmetric InfoNCE loss
against the image embeddings in the cache; the image tower is locked (LiT,
arXiv 2111.07991), so no image is decoded or encoded here. --model names the
CLIP config whose text_cfg is trained. Its embed_dim meets the cache's dim
(the image tower's feature size: DINOv2 384/768/1024/1536, twice that with
--pool cls+mean; Swin 768/1024): a random-init text tower takes the cache's
dim; a pretrained one (--weights FILE) must project to it, or train a fresh
projection (--new-projection) or an image head (--image-head). Captions: each row's label picks its class's caption in classes.json
(--captions classes), so a classes.json written with another template
retrains on the same cache; or --captions cache uses the caption text extract
stored with each row. Captions are tokenized with CLIP's BPE vocabulary, built
in (--vocab or $LITCACHE_VOCAB for another file).

--split and --val-split follow the rule of every reader: the named split, or
the cache's only split, or in a cache holding several "train" (--split) and
"val" (--val-split).

Each distinct caption of a batch is encoded once and the context is cut to the
batch's longest caption; both leave loss and gradients unchanged (--no-dedup,
--no-trim to check). One view per image per epoch when the cache holds several.
AdamW with OpenCLIP's defaults (β 0.9/0.98, eps 1e-6, no decay on gains,
biases and logit_scale), linear warm-up in steps then the schedule; the logit
scale is clamped to [0, ln 100] after each step. A seed fixes everything.

Writes OUT/config.json, OUT/metrics.jsonl (a line per step and per epoch),
OUT/checkpoints/step-NNNNNNN/ (every --checkpoint-every steps and at each epoch
end: text tower in OpenCLIP names + open_clip_config.json, optimizer and
trainer state) and OUT/final/: a full OpenCLIP model (open_clip_model.safetensors
+ open_clip_config.json) of the cache's locked image tower, copied from the
weights the cache was made with (or regenerated from its random seed; the cache
manifest records which, and the weights are checked against the cache's
fingerprint before training starts), and the tuned text tower. OpenCLIP loads it
with strict=True; litcache eval, embed and bundle take OUT. --text-only writes
the text tower alone (the form before full models; also with --image-head,
whose head an OpenCLIP model has no place for).
--resume continues bit-exactly from the latest checkpoint; an interrupted run
(Ctrl-C) writes a checkpoint before it stops.`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cfg, err := tuneConfig(c, d, shared, false)
			if err != nil {
				return err
			}
			cfg.Out, cfg.Resume = c.String("out"), c.Bool("resume")
			if err := cfg.Validate(); err != nil {
				return err
			}
			if err := checkPaths(c, tunePaths...); err != nil {
				return err
			}
			dev, err := deviceFromFlags(c)
			if err != nil {
				return err
			}
			if cfg.Backend, err = openBackend(dev, tunePrecision(cfg), c.App.ErrWriter); err != nil {
				return fmt.Errorf("tune: %w", err)
			}
			res, err := tune.Run(c.Context, cfg)
			if err != nil {
				return err
			}
			printTuneResult(c, res)
			return nil
		},
	}, tuneRequired...)
}

// printTuneResult prints the run's figures and where its outputs are.
func printTuneResult(c *cli.Context, res tune.Result) {
	w := c.App.Writer
	fmt.Fprintf(w, "%d steps (%d per epoch), %d epochs, %.0f samples/s\n", res.Steps, res.StepsPerEpoch, res.Epochs, res.SamplesPerS)
	fmt.Fprintf(w, "train loss %.4f  logit scale %.4f (temperature 1/%.1f)\n", res.Loss, res.LogitScale, math.Exp(res.LogitScale))
	if res.HasVal {
		chance := 1 / float64(max(res.Classes, 1))
		fmt.Fprintf(w, "val: loss %.4f  zero-shot top-1 %.4f  top-5 %.4f  (chance %.4f / %.4f, %d classes)\n",
			res.ValLoss, res.Top1, res.Top5, chance, min(5*chance, 1), res.Classes)
	}
	fmt.Fprintf(w, "metrics:    %s\n", res.Metrics)
	fmt.Fprintf(w, "checkpoint: %s\n", res.Checkpoint)
	switch {
	case res.Final != "" && res.FullModel:
		fmt.Fprintf(w, "full model: %s (locked image tower + tuned text tower)\n", res.Final)
	case res.Final != "":
		fmt.Fprintf(w, "text tower: %s\n", res.Final)
	default:
		fmt.Fprintf(w, "stopped early: continue with --resume\n")
	}
}

// flagDefault is a flag's default as its list form in sweep takes it.
func flagDefault(f cli.Flag) string {
	if df, ok := f.(cli.DocGenerationFlag); ok {
		return df.GetValue()
	}
	return ""
}

// tuneWeightsFlag is --weights, by default a random init from --seed
// (spelled "random" where it must be spelled, as in a sweep's list).
func tuneWeightsFlag() *cli.StringFlag {
	f := weightsFlag("text weights to start from", ", "+tune.RandomInit+" (a random init from --seed)")
	f.DefaultText = tune.RandomInit
	return f
}

// tunePrecision is the GPU backend a tuning run opens: bf16 unless
// --precision fp32 (issue 11: bf16 compute, float32 masters by default on
// the GPU; the CPU is float32 whatever it says, and refuses bf16).
func tunePrecision(cfg tune.Config) cuda.Precision {
	if cfg.Precision == tune.PrecisionFP32 {
		return cuda.F32
	}
	return cuda.BF16
}
