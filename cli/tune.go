package cli

import (
	"fmt"
	"math"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/optim"
	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/stages/tune"

	"github.com/litcache/litcache/cuda"
)

func tuneCommand() *cli.Command {
	d := tune.DefaultConfig()
	var kinds []string
	for _, k := range optim.Kinds() {
		kinds = append(kinds, string(k))
	}
	return &cli.Command{
		Name:  "tune",
		Usage: "LiT: train the text tower against cached image embeddings (image tower locked)",
		UsageText: `litcache tune --cache DIR --classes classes.json --text-model CONFIG --vocab FILE --out DIR [options]

   # from scratch, the paper's recipe on a ViT-B/32 cache, zero-shot on val each epoch
   litcache tune --cache cache/train --val-cache cache/val --classes classes.json \
       --text-model ViT-B-32 --vocab bpe_simple_vocab_16e6.txt.gz \
       --epochs 18 --batch-size 1024 --lr 1e-3 --warmup 1000 --out runs/lit
   # from pretrained OpenCLIP text weights, checkpoint every 500 steps; rerun with --resume after a stop
   litcache tune ... --init-text open_clip_model.safetensors --checkpoint-every 500 --out runs/lit-pre
   litcache tune ... --init-text open_clip_model.safetensors --checkpoint-every 500 --out runs/lit-pre --resume`,
		Description: `Trains the text tower (and the logit scale) with the symmetric InfoNCE loss
against the image embeddings in the cache; the image tower is locked (LiT,
arXiv 2111.07991), so no image is decoded or encoded here. Captions: each row's
label picks its class's caption in classes.json (--captions classes), so a
classes.json written with another template retrains on the same cache; or
--captions cache uses the caption text extract stored with each row.

Each distinct caption of a batch is encoded once and the context is cut to the
batch's longest caption; both leave loss and gradients unchanged (--no-dedup,
--no-trim to check). One view per image per epoch when the cache holds several.
AdamW with OpenCLIP's defaults (β 0.9/0.98, eps 1e-6, no decay on gains,
biases and logit_scale), linear warm-up in steps then the schedule; the logit
scale is clamped to [0, ln 100] after each step. A seed fixes everything.

Writes OUT/config.json, OUT/metrics.jsonl (a line per step and per epoch),
OUT/checkpoints/step-NNNNNNN/ (every --checkpoint-every steps and at each epoch
end: text tower in OpenCLIP names + open_clip_config.json, optimizer and
trainer state) and OUT/final/ (the tuned tower; litcache eval --text OUT).
--resume continues bit-exactly from the latest checkpoint; an interrupted run
(Ctrl-C) writes a checkpoint before it stops.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cache", Usage: "training cache folder (from litcache extract)", Required: true},
			&cli.StringFlag{Name: "split", Usage: `training split of the cache ("" = all parts)`},
			&cli.StringFlag{Name: "val-cache", Usage: "val cache folder: zero-shot top-1/top-5 and val loss each epoch"},
			&cli.StringFlag{Name: "val-split", Usage: `split of the val cache ("" = all parts)`},
			&cli.StringFlag{Name: "classes", Usage: "classes.json (from litcache caption): captions and zero-shot classes", Required: true},
			&cli.StringFlag{Name: "captions", Value: d.Captions, Usage: `"classes" (caption of each row's class) or "cache" (caption stored with the row)`},
			&cli.StringFlag{Name: "text-model", Value: d.TextModel, Usage: "text model config: built-in name (" + strings.Join(clip.BuiltinNames(), ", ") + ") or OpenCLIP JSON"},
			&cli.StringFlag{Name: "init-text", Usage: "pretrained text weights (OpenCLIP or HF names); none = random init from --seed"},
			&cli.StringFlag{Name: "vocab", Usage: "CLIP BPE vocabulary (bpe_simple_vocab_16e6.txt.gz)", Required: true, EnvVars: []string{"LITCACHE_VOCAB"}},
			&cli.IntFlag{Name: "context", Usage: "token context (0 = the model's context_length)"},
			&cli.StringFlag{Name: "out", Usage: "run folder", Required: true},
			&cli.IntFlag{Name: "epochs", Value: d.Epochs, Usage: "passes over the training cache"},
			&cli.IntFlag{Name: "batch-size", Value: d.BatchSize, Usage: "images per step (the last partial batch of an epoch is dropped)"},
			&cli.Float64Flag{Name: "lr", Value: d.LR, Usage: "base learning rate"},
			&cli.IntFlag{Name: "warmup", Value: d.Warmup, Usage: "linear warm-up steps"},
			&cli.StringFlag{Name: "schedule", Value: d.Schedule, Usage: "learning-rate schedule after warm-up: " + strings.Join(kinds, ", ")},
			&cli.IntFlag{Name: "cooldown-steps", Usage: "const-cooldown: steps of the final cool-down"},
			&cli.Float64Flag{Name: "cooldown-power", Value: d.CooldownPower, Usage: "const-cooldown: power of the cool-down (1 = linear)"},
			&cli.Float64Flag{Name: "cooldown-end-lr", Usage: "const-cooldown: learning rate at the end"},
			&cli.Float64Flag{Name: "wd", Value: d.WeightDecay, Usage: "AdamW weight decay (not on gains, biases, logit_scale)"},
			&cli.Float64Flag{Name: "beta1", Value: d.Beta1, Usage: "AdamW β1"},
			&cli.Float64Flag{Name: "beta2", Value: d.Beta2, Usage: "AdamW β2"},
			&cli.Float64Flag{Name: "eps", Value: d.Eps, Usage: "AdamW eps"},
			&cli.Float64Flag{Name: "grad-clip", Usage: "clip the global gradient L2 norm to this (0 = off)"},
			&cli.Float64Flag{Name: "logit-scale", Usage: "initial log temperature (0 = the pretrained weights' or ln(1/0.07))"},
			&cli.Uint64Flag{Name: "seed", Value: d.Seed, Usage: "seed of the initialisation, data order and views"},
			&cli.BoolFlag{Name: "image-head", Usage: "train a linear head on the image side (off: LiT locks it)"},
			&cli.BoolFlag{Name: "no-dedup", Usage: "encode every row's caption, duplicates too (same result, slower)"},
			&cli.BoolFlag{Name: "no-trim", Usage: "run the text tower on the full context (same result, slower)"},
			&cli.StringFlag{Name: "shuffle", Value: d.Shuffle, Usage: `epoch order: "global" (uniform over all images) or "block" (parts shuffled, then images within windows of 8 parts: sequential reads for a cache larger than memory)`},
			&cli.IntFlag{Name: "checkpoint-every", Usage: "steps between checkpoints (0 = at epoch ends only)"},
			&cli.BoolFlag{Name: "resume", Usage: "continue from OUT's latest checkpoint"},
			&cli.IntFlag{Name: "stop-after", Usage: "stop after this many steps in total, with a checkpoint (0 = run every epoch)"},
			&cli.StringFlag{Name: "eval-templates", Value: "caption", Usage: `per-epoch zero-shot prompts: "caption", "openai", or a file of templates`},
			&cli.StringFlag{Name: "expect-fingerprint", Usage: "refuse caches made by another image tower"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress output"},
			&cli.StringFlag{Name: "device", Value: "auto", Usage: "cpu, cuda (float32 on the GPU), or auto (the GPU when one is found and passes its self-check)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("tune: unexpected argument %q (all inputs are flags)", c.Args().First())
			}
			cfg := d
			cfg.Cache, cfg.Split, cfg.ValCache, cfg.ValSplit = c.String("cache"), c.String("split"), c.String("val-cache"), c.String("val-split")
			cfg.Classes, cfg.Captions, cfg.TextModel, cfg.InitText = c.String("classes"), c.String("captions"), c.String("text-model"), c.String("init-text")
			cfg.Vocab, cfg.ContextLen, cfg.Out = c.String("vocab"), c.Int("context"), c.String("out")
			cfg.Epochs, cfg.BatchSize, cfg.LR, cfg.Warmup = c.Int("epochs"), c.Int("batch-size"), c.Float64("lr"), c.Int("warmup")
			cfg.Schedule, cfg.CooldownSteps = c.String("schedule"), c.Int("cooldown-steps")
			cfg.CooldownPower, cfg.CooldownEndLR = c.Float64("cooldown-power"), c.Float64("cooldown-end-lr")
			cfg.WeightDecay, cfg.Beta1, cfg.Beta2, cfg.Eps = c.Float64("wd"), c.Float64("beta1"), c.Float64("beta2"), c.Float64("eps")
			cfg.GradClip, cfg.LogitScale, cfg.Seed = c.Float64("grad-clip"), c.Float64("logit-scale"), c.Uint64("seed")
			cfg.ImageHead, cfg.Dedup, cfg.Trim = c.Bool("image-head"), !c.Bool("no-dedup"), !c.Bool("no-trim")
			cfg.Shuffle = c.String("shuffle")
			cfg.CheckpointEvery, cfg.Resume, cfg.StopAfter = c.Int("checkpoint-every"), c.Bool("resume"), c.Int("stop-after")
			cfg.ExpectFingerprint, cfg.Quiet, cfg.Log = c.String("expect-fingerprint"), c.Bool("quiet"), c.App.ErrWriter
			if t := c.String("eval-templates"); t != "caption" {
				tm, err := evaluate.ResolveTemplates(t)
				if err != nil {
					return fmt.Errorf("tune: --eval-templates: %w", err)
				}
				cfg.EvalTemplates = tm
			}
			be, err := openBackend(c.String("device"), cuda.F32, c.App.ErrWriter)
			if err != nil {
				return fmt.Errorf("tune: %w", err)
			}
			cfg.Backend = be
			res, err := tune.Run(c.Context, cfg)
			if err != nil {
				return err
			}
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
			if res.Final != "" {
				fmt.Fprintf(w, "text tower: %s\n", res.Final)
			} else {
				fmt.Fprintf(w, "stopped early: continue with --resume\n")
			}
			return nil
		},
	}
}
