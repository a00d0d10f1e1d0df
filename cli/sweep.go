package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/stages/extract"
	"github.com/litcache/litcache/stages/sweep"
	"github.com/litcache/litcache/stages/tune"
)

// sweepAxisDefaults are the axes whose sweep default differs from tune's:
// the paper's warm-up ablation.
var sweepAxisDefaults = map[string]string{"warmup": "500,1000,2000"}

// sweepAxisUsage says more of the axes whose list means more than "one
// member per value".
var sweepAxisUsage = map[string]string{
	"cache":     " (comma-separated list: the image-tower axis, one cache per tower)",
	"val-cache": " (comma-separated list: one per --cache value, paired by position)",
	"classes":   " (comma-separated list: the caption-recipe axis, e.g. from caption --recipes)",
	"weights":   " (comma-separated list: the text-init axis)",
}

// sweepFlags are every tune flag (tuneFlags; the grid axes as
// comma-separated lists) and sweep's own.
func sweepFlags(shared []tuneFlag) []cli.Flag {
	flags := make([]cli.Flag, 0, len(shared)+6)
	for _, f := range shared {
		if f.axis == nil {
			flags = append(flags, f.flag)
			continue
		}
		name := f.flag.Names()[0]
		def, ok := sweepAxisDefaults[name]
		if !ok {
			def = flagDefault(f.flag)
		}
		usage := f.flag.(cli.DocGenerationFlag).GetUsage()
		more, ok := sweepAxisUsage[name]
		if !ok {
			more = " (comma-separated list: a grid axis)"
		}
		sf := &cli.StringFlag{Name: name, Value: def, Usage: usage + more}
		if df, ok := f.flag.(*cli.StringFlag); ok && def == "" {
			sf.DefaultText = df.DefaultText
		}
		flags = append(flags, sf)
	}
	flags = append(flags,
		&cli.StringFlag{Name: "out", Usage: "sweep folder: OUT/<member> per member, OUT/sweep.json, the summary"},
		&cli.BoolFlag{Name: "prune-checkpoints", Usage: "delete a member's checkpoints once it has finished (final/ stays)"},
		&cli.IntFlag{Name: "member", Usage: "run only this member (0-based)",
			DefaultText: "the array task's index ($SLURM_ARRAY_TASK_ID - $SLURM_ARRAY_TASK_MIN, or $JOB_COMPLETION_INDEX), else every member in turn"})
	return append(flags, deviceFlags("each member's training on the GPU (--precision), the cache resident there")...)
}

func sweepCommand() *cli.Command {
	d := tune.DefaultConfig()
	shared := tuneFlags(d)
	return withRequired(&cli.Command{
		Name:  "sweep",
		Usage: "a grid of tuning runs (warm-ups, learning rates, image towers, caption recipes, text inits), with a summary table and overlay plots",
		UsageText: `litcache sweep --cache CACHE --classes classes.json --model CONFIG --out DIR --warmup 500,1000,2000 [--lr ...] [tune flags]
litcache sweep summarize DIR

   # the paper's warm-up ablation, members one after the other
   litcache sweep --cache cache/train --val-cache cache/val --classes classes.json \
       --model ViT-B-32 --epochs 18 --batch-size 1024 --warmup 500,1000,2000 --out sweeps/warmup
   # one member per SLURM array task (sbatch --array=0-2), then the summary
   litcache sweep ... --out sweeps/warmup          # each task runs member $SLURM_ARRAY_TASK_ID - $SLURM_ARRAY_TASK_MIN
   litcache sweep summarize sweeps/warmup
   # image towers × caption recipes: one cache per tower (val caches paired), classes from caption --recipes;
   litcache sweep --cache cache/b32/train,cache/b16/train --val-cache cache/b32/val,cache/b16/val \
       --classes recipes/paper/classes.json,recipes/auto/classes.json --model ViT-B-16 --warmup 1000 --out sweeps/towers
   # towers of other families and widths (CLIP ViT-B/16 512, DINOv2-B/14 cls+mean 1536, Swin-T 768):
   # a random-init text tower takes each cache's dim
   litcache sweep --cache cache/b16/train,cache/dinov2-b14/train,cache/swin-t/train \
       --val-cache cache/b16/val,cache/dinov2-b14/val,cache/swin-t/val --classes classes.json --model ViT-B-16 --out sweeps/families`,
		Description: `Takes every flag of litcache tune. The grid axes (--cache, --classes, --weights,
--warmup, --lr, --batch-size, --wd, --epochs, --schedule, --seed) take
comma-separated lists; the members are the cartesian product, each a tune run
in DIR/<member> (e.g. DIR/warmup-500, DIR/cache-b16_classes-paper), the grid
itself in DIR/sweep.json. A finished member is not run again; a stopped one
resumes from its latest checkpoint.

--cache is the image-tower axis: one cache per tower (extract once per tower),
and --val-cache gives one val cache per --cache value, paired by position. One
--model trains every member; its embed_dim meets each tower's width by tune's
rule (a random-init text tower takes the cache's dim; a pretrained one must
project to it, or --new-projection), checked before the first member starts.
A member over a DINOv2 or Swin cache writes the text tower alone in final/.
--classes is the caption-recipe axis (captions are per class, so a recipe needs
no re-extraction; litcache caption --recipes writes one classes.json each).
--weights is the text-init axis in tune's words: a weights file, random:SEED,
or random (a random init from --seed). A value is named in member folders and
legends by what tells it from the others (the folder "paper" of
recipes/paper/classes.json); sweep.json and summary.json keep each member's
value on every axis in full ("axes", keyed by flag name) with the cache's
fingerprint and model and the classes file's template.

--member i runs only member i. In an array job it defaults to the task's index,
read as litcache extract reads its worker index: $SLURM_ARRAY_TASK_ID minus
$SLURM_ARRAY_TASK_MIN (sbatch --array=0-(members-1)), or Kubernetes'
$JOB_COMPLETION_INDEX (with $LITCACHE_WORKERS, the Job's completions). Without
either every member runs in turn and the summary is written at the end.
"sweep summarize DIR" writes it from whatever the members have logged so far:
summary.md (the table with a column per varying axis, chance level beside
top-1/top-5), summary.json, and overlay plots with one line per member: loss
per step and per epoch, zero-shot top-1 and top-5 per epoch, val loss, and the
learning rate per step; with two or more varying axes, a line's colour is its
value on the first and its dash and marker its values on the others. With a
cache axis it adds the image-tower comparison: top-1/top-5 per tower, and the
best member of each tower evaluated on its val cache per taxonomic rank and
supercategory (DIR/<member>/eval/, and towers_top1_by_rank.png).`,
		Flags: sweepFlags(shared),
		Subcommands: []*cli.Command{{
			Name:      "summarize",
			Usage:     "write the summary table and plots of a sweep folder",
			ArgsUsage: "DIR",
			UsageText: "litcache sweep summarize sweeps/warmup",
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usageError(c, "want one sweep folder, got %d arguments", c.NArg())
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
				return usageError(c, "unexpected argument %q (did you mean \"sweep summarize DIR\"?)", c.Args().First())
			}
			cfg, err := sweepConfig(c, shared)
			if err != nil {
				return err
			}
			dev, err := deviceFromFlags(c)
			if err != nil {
				return err
			}
			if cfg.Base.Backend, err = openBackend(dev, tunePrecision(cfg.Base), c.App.ErrWriter); err != nil {
				return fmt.Errorf("sweep: %w", err)
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
	}, tuneRequired...)
}

// sweepConfig turns the flags into a sweep.Config, naming the flag of any
// bad value; it opens nothing.
func sweepConfig(c *cli.Context, shared []tuneFlag) (sweep.Config, error) {
	cfg := sweep.DefaultConfig()
	b, err := tuneConfig(c, cfg.Base, shared, true)
	if err != nil {
		return cfg, err
	}
	g := sweep.Grid{}
	for _, f := range shared {
		if f.axis != nil {
			if err := f.axis(c, &g); err != nil {
				return cfg, usageError(c, "%v", err)
			}
		}
	}
	cfg.Base, cfg.Grid, cfg.Out = b, g, c.String("out")
	cfg.Quiet, cfg.Log = b.Quiet, c.App.ErrWriter
	cfg.PruneCheckpoints = c.Bool("prune-checkpoints")
	if err := g.Validate(b); err != nil {
		return cfg, usageError(c, "%v", strings.TrimPrefix(err.Error(), "sweep: "))
	}
	members := sweep.Members(b, g)
	if cfg.Member, err = sweepMember(c, len(members)); err != nil {
		return cfg, err
	}
	for _, m := range members {
		if err := m.TuneConfig(b, cfg.Out).Validate(); err != nil {
			return cfg, fmt.Errorf("sweep: member %s: %w", m.Name, err)
		}
	}
	if err := checkSweepPaths(c, members); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// checkSweepPaths stats every input the members name (each value of the
// list flags) and the vocabulary, before a device opens.
func checkSweepPaths(c *cli.Context, members []sweep.Member) error {
	if err := checkPaths(c, "vocab"); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, m := range members {
		for _, in := range []struct{ flag, path string }{{"cache", m.Cache}, {"val-cache", m.ValCache}, {"classes", m.Classes}, {"weights", m.Weights}} {
			if _, random, _ := clip.ParseRandomWeights(in.path); in.path == "" || seen[in.path] || (in.flag == "weights" && (random || in.path == tune.RandomInit)) {
				continue
			}
			seen[in.path] = true
			if _, err := os.Stat(in.path); err != nil {
				return fmt.Errorf("%s: --%s: %w", commandPath(c), in.flag, err)
			}
		}
	}
	return nil
}

// sweepMember is the member to run: --member, else the array task's index
// as extract reads its worker index (extract.WorkerFromEnv: SLURM's task id
// minus SLURM_ARRAY_TASK_MIN, or JOB_COMPLETION_INDEX), else -1 (every
// member in turn).
func sweepMember(c *cli.Context, members int) (int, error) {
	if c.IsSet("member") {
		if m := c.Int("member"); m < 0 || m >= members {
			return 0, usageError(c, "--member %d outside the grid of %d members (0..%d)", m, members, members-1)
		}
		return c.Int("member"), nil
	}
	task, tasks, ok, err := extract.WorkerFromEnv(os.Getenv)
	if err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	if !ok {
		return -1, nil
	}
	if task < 0 || task >= members {
		return 0, fmt.Errorf("sweep: array task %d (of %d) is outside the grid of %d members: run the array with one task per member", task, tasks, members)
	}
	if tasks < members {
		fmt.Fprintf(c.App.ErrWriter, "sweep: warning: the array has %d tasks for %d members; members %d.. run in no task\n", tasks, members, tasks)
	}
	return task, nil
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

// printSweepSummary prints the table and where the files are.
func printSweepSummary(c *cli.Context, s *sweep.Summary) {
	w := c.App.Writer
	fmt.Fprint(w, s.Table().Markdown())
	for _, f := range s.Files {
		fmt.Fprintf(w, "wrote %s\n", f)
	}
}
