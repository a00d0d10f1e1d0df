package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/stages/sweep"
	"github.com/litcache/litcache/stages/tune"

	"github.com/litcache/litcache/cuda"
)

func sweepCommand() *cli.Command {
	d := tune.DefaultConfig()
	return &cli.Command{
		Name:  "sweep",
		Usage: "a grid of tuning runs over one cache (e.g. warm-up 500/1000/2000), with a summary table and overlay plots",
		UsageText: `litcache sweep --cache CACHE --classes classes.json --vocab VOCAB --text-model CONFIG --out DIR --warmup 500,1000,2000 [--lr ...] [tune flags]
litcache sweep summarize DIR

   # the paper's warm-up ablation, members one after the other
   litcache sweep --cache cache/train --val-cache cache/val --classes classes.json --vocab bpe_simple_vocab_16e6.txt.gz \
       --text-model ViT-B-32 --epochs 18 --batch-size 1024 --warmup 500,1000,2000 --out sweeps/warmup
   # one member per SLURM array task (sbatch --array=0-2), then the summary
   litcache sweep ... --out sweeps/warmup          # each task runs member $SLURM_ARRAY_TASK_ID
   litcache sweep summarize sweeps/warmup`,
		Description: `Every flag that takes a comma-separated list (--warmup, --lr, --batch-size, --wd,
--epochs, --schedule, --seed) is an axis of the grid; the members are the
cartesian product, each a tune run in DIR/<member> (e.g. DIR/warmup-500), the
grid itself in DIR/sweep.json. A finished member is not run again; a stopped one
resumes from its latest checkpoint.

--member i runs only member i (default: $SLURM_ARRAY_TASK_ID, so the array index
is the member index: sbatch --array=0-(members-1)); without it every member runs
in turn and the summary is written at the end. "sweep summarize DIR" writes it
from whatever the members have logged so far: summary.md (the table, chance level
beside top-1/top-5), summary.json, and overlay plots with one line per member:
loss per step and per epoch, zero-shot top-1 and top-5 per epoch, val loss, and
the learning rate per step.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cache", Usage: "training cache folder"},
			&cli.StringFlag{Name: "split", Usage: `training split of the cache ("" = all parts)`},
			&cli.StringFlag{Name: "val-cache", Usage: "val cache folder: zero-shot top-1/top-5 each epoch"},
			&cli.StringFlag{Name: "val-split", Usage: `split of the val cache ("" = all parts)`},
			&cli.StringFlag{Name: "classes", Usage: "classes.json: captions and the zero-shot classes"},
			&cli.StringFlag{Name: "captions", Value: d.Captions, Usage: `"classes" (caption of each row's class) or "cache" (caption stored with the row)`},
			&cli.StringFlag{Name: "text-model", Value: d.TextModel, Usage: "text model config: built-in name or JSON"},
			&cli.StringFlag{Name: "init-text", Usage: "pretrained text weights (OpenCLIP or HF names); none = random init"},
			&cli.StringFlag{Name: "vocab", Usage: "CLIP BPE vocabulary (bpe_simple_vocab_16e6.txt.gz)", EnvVars: []string{"LITCACHE_VOCAB"}},
			&cli.IntFlag{Name: "context", Usage: "token context (0 = the model's context_length)"},
			&cli.StringFlag{Name: "warmup", Value: "500,1000,2000", Usage: "warm-up steps (list)"},
			&cli.StringFlag{Name: "lr", Value: fmtFloat(d.LR), Usage: "base learning rate (list)"},
			&cli.StringFlag{Name: "batch-size", Value: strconv.Itoa(d.BatchSize), Usage: "batch size (list)"},
			&cli.StringFlag{Name: "wd", Value: fmtFloat(d.WeightDecay), Usage: "AdamW weight decay (list)"},
			&cli.StringFlag{Name: "epochs", Value: strconv.Itoa(d.Epochs), Usage: "epochs (list)"},
			&cli.StringFlag{Name: "schedule", Value: d.Schedule, Usage: "cosine, const or const-cooldown (list)"},
			&cli.StringFlag{Name: "seed", Value: strconv.FormatUint(d.Seed, 10), Usage: "seed (list)"},
			&cli.IntFlag{Name: "cooldown-steps", Usage: "const-cooldown: steps of the final cool-down"},
			&cli.Float64Flag{Name: "grad-clip", Usage: "clip the global gradient norm (0 = off)"},
			&cli.BoolFlag{Name: "image-head", Usage: "train a linear head on the image side (LiT locks it: off)"},
			&cli.IntFlag{Name: "checkpoint-every", Usage: "steps between checkpoints (0 = epoch ends only)"},
			&cli.StringFlag{Name: "eval-templates", Value: "caption", Usage: `per-epoch classifier: "caption", "openai" or a templates file`},
			&cli.StringFlag{Name: "expect-fingerprint", Usage: "refuse caches made by another image tower"},
			&cli.StringFlag{Name: "out", Usage: "sweep folder"},
			&cli.BoolFlag{Name: "prune-checkpoints", Usage: "delete a member's checkpoints once it has finished (final/ stays)"},
			&cli.IntFlag{Name: "member", Value: -1, EnvVars: []string{"SLURM_ARRAY_TASK_ID"}, Usage: "run only this member (0-based; -1 = all in turn)"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress output"},
			&cli.StringFlag{Name: "device", Value: "auto", Usage: "cpu, cuda (float32 on the GPU), or auto (the GPU when one is found and passes its self-check)"},
		},
		Subcommands: []*cli.Command{{
			Name:      "summarize",
			Usage:     "write the summary table and plots of a sweep folder",
			ArgsUsage: "DIR",
			UsageText: "litcache sweep summarize sweeps/warmup",
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return fmt.Errorf("sweep summarize: want one sweep folder, got %d arguments", c.NArg())
				}
				s, err := sweep.Summarize(c.Args().First())
				if err != nil {
					return err
				}
				printSweepSummary(c, s)
				return nil
			},
		}},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("sweep: unexpected argument %q (did you mean \"sweep summarize DIR\"?)", c.Args().First())
			}
			cfg, err := sweepConfig(c)
			if err != nil {
				return err
			}
			results, sum, err := sweep.Run(c.Context, cfg)
			if err != nil {
				return err
			}
			if sum != nil {
				printSweepSummary(c, sum)
				return nil
			}
			for _, r := range results {
				fmt.Fprintf(c.App.Writer, "member %d (%s) done: %s\n", r.Member.Index, r.Member.Label(), r.Result.Out)
			}
			fmt.Fprintf(c.App.Writer, "when every member has finished: litcache sweep summarize %s\n", cfg.Out)
			return nil
		},
	}
}

// sweepConfig turns the flags into a sweep.Config, naming the flag of any bad value.
func sweepConfig(c *cli.Context) (sweep.Config, error) {
	cfg := sweep.DefaultConfig()
	b := tune.DefaultConfig()
	b.Cache, b.Split, b.ValCache, b.ValSplit = c.String("cache"), c.String("split"), c.String("val-cache"), c.String("val-split")
	b.Classes, b.Captions, b.TextModel, b.InitText = c.String("classes"), c.String("captions"), c.String("text-model"), c.String("init-text")
	b.Vocab, b.ContextLen, b.CooldownSteps = c.String("vocab"), c.Int("context"), c.Int("cooldown-steps")
	b.GradClip, b.ImageHead, b.CheckpointEvery = c.Float64("grad-clip"), c.Bool("image-head"), c.Int("checkpoint-every")
	b.ExpectFingerprint, b.Log, b.Quiet = c.String("expect-fingerprint"), c.App.ErrWriter, c.Bool("quiet")
	be, err := openBackend(c.String("device"), cuda.F32, c.App.ErrWriter)
	if err != nil {
		return sweep.Config{}, fmt.Errorf("sweep: %w", err)
	}
	b.Backend = be
	for _, req := range []string{"cache", "classes", "vocab", "out"} {
		if c.String(req) == "" {
			return cfg, fmt.Errorf("sweep: --%s is required", req)
		}
	}
	if t := c.String("eval-templates"); t != "caption" {
		tm, err := evaluate.ResolveTemplates(t)
		if err != nil {
			return cfg, fmt.Errorf("sweep: --eval-templates: %w", err)
		}
		b.EvalTemplates = tm
	}
	g, err := sweepGrid(c)
	if err != nil {
		return cfg, fmt.Errorf("sweep: %w", err)
	}
	cfg.Base, cfg.Grid, cfg.Out = b, g, c.String("out")
	cfg.Member, cfg.Quiet, cfg.Log = c.Int("member"), c.Bool("quiet"), c.App.ErrWriter
	cfg.PruneCheckpoints = c.Bool("prune-checkpoints")
	return cfg, nil
}

// sweepGrid reads the list flags into a grid.
func sweepGrid(c *cli.Context) (sweep.Grid, error) {
	var err error
	g := sweep.Grid{}
	if g.Warmup, err = intList(c, "warmup"); err != nil {
		return g, err
	}
	if g.LR, err = floatList(c, "lr"); err != nil {
		return g, err
	}
	if g.BatchSize, err = intList(c, "batch-size"); err != nil {
		return g, err
	}
	if g.WeightDecay, err = floatList(c, "wd"); err != nil {
		return g, err
	}
	if g.Epochs, err = intList(c, "epochs"); err != nil {
		return g, err
	}
	g.Schedule = splitList(c.String("schedule"))
	seeds, err := intList(c, "seed")
	if err != nil {
		return g, err
	}
	for _, s := range seeds {
		if s < 0 {
			return g, fmt.Errorf("--seed %d < 0", s)
		}
		g.Seed = append(g.Seed, uint64(s))
	}
	return g, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func intList(c *cli.Context, flag string) ([]int, error) {
	var out []int
	for _, f := range splitList(c.String(flag)) {
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not an integer (want a comma-separated list)", flag, f)
		}
		out = append(out, v)
	}
	return out, nil
}

func floatList(c *cli.Context, flag string) ([]float64, error) {
	var out []float64
	for _, f := range splitList(c.String(flag)) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not a number (want a comma-separated list)", flag, f)
		}
		out = append(out, v)
	}
	return out, nil
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// printSweepSummary prints the table and where the files are.
func printSweepSummary(c *cli.Context, s *sweep.Summary) {
	w := c.App.Writer
	fmt.Fprint(w, s.Table().Markdown())
	for _, f := range s.Files {
		fmt.Fprintf(w, "wrote %s\n", f)
	}
}
