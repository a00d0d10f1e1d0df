package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/stages/bundle"
	"github.com/litcache/litcache/stages/demo"
)

func bundleCommand() *cli.Command {
	d := bundle.DefaultConfig()
	return withRequired(&cli.Command{
		Name:  "bundle",
		Usage: "one file for field use: the locked image tower, a tuned run's class embeddings and the taxonomy",
		UsageText: `litcache bundle --run RUN [--model CONFIG --weights FILE|random:SEED [--pool P]] [--classes classes.json] [--templates caption|openai|FILE] --out FILE

   # the paper's setting: a tuned ViT-L/14 text tower; final/ holds the image tower too
   litcache bundle --run sweeps/warmup/warmup-1000 --classes shards/train/classes.json --out inat21.bundle.safetensors
   # naming the image tower (checked against the run's cache); needed when neither
   # final/ (tune --text-only) nor the cache records it
   litcache bundle --run runs/lit --model ViT-L-14-quickgelu --weights open_clip_model.safetensors --out inat21.bundle.safetensors
   # a run on a DINOv2 cache: the cache's recorded tower
   litcache bundle --run runs/lit-dinov2 --out dinov2.bundle.safetensors`,
		Description: `Writes one safetensors file that litcache predict and litcache serve need
alone: the locked image tower (float32, any family: CLIP, DINOv2, Swin),
every class's text embedding precomputed with the run's tuned text tower and
the templates (each prompt normalised, a class's prompts averaged, as eval
does), logit_scale, and in the header metadata the model config, the
pooling, the preprocessing, the fingerprint of the cache the run was tuned
on, and each class's id, name, common name and taxonomy (kingdom … species).

The image tower is --model with --weights (and --pool) when given, else the
run's own: final/'s when it is a full model (tune's default), else the one
the run's training cache records (tune --text-only, and runs on DINOv2 or
Swin caches). Either way its fingerprint must be the one the run was tuned
against (final/'s record, else the cache's manifest): any other is refused.
final/ serves in either of tune's forms. Of the cache, only its manifest is
read (no split: the fingerprint is the whole cache's); --cache says where it
is when it has moved. --classes and --vocab default to the run's.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "run", Usage: "tune run `FOLDER` (config.json + final/, either form)"},
			bundleModelFlag(),
			bundleWeightsFlag(),
			poolFlag(),
			&cli.StringFlag{Name: "classes", Usage: "classes.json", DefaultText: "the run's"},
			&cli.StringFlag{Name: "templates", Value: d.Templates, Usage: `"caption" (each class's caption), "openai" (80 prompts), or a file of templates`},
			bundleVocabFlag(),
			&cli.StringFlag{Name: "cache", Usage: "where the run's training cache is now", DefaultText: "where the run recorded it"},
			&cli.IntFlag{Name: "batch-size", Value: d.BatchSize, Usage: "most prompts per text-tower call"},
			&cli.StringFlag{Name: "out", Usage: "bundle `FILE` to write (e.g. model.bundle.safetensors)"},
			threadsFlag("the CPU backend's parallelism"),
			&cli.BoolFlag{Name: "quiet", Usage: "no progress output"},
		}, deviceFlags("the towers in float32 (the bundle stores float32)")...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if given(c, "model") != given(c, "weights") {
				return usageError(c, "--model and --weights name the image tower together (or give neither: the run's own)")
			}
			if err := checkDependencies(c, dependency{"pool", given(c, "model"), "without --model (the run's own tower has its pooling)"}); err != nil {
				return err
			}
			if err := checkPaths(c, "run", "classes", "cache", "weights", "vocab"); err != nil {
				return err
			}
			cfg := d
			cfg.Run, cfg.Model, cfg.Weights, cfg.Pool = c.String("run"), c.String("model"), c.String("weights"), c.String("pool")
			cfg.Classes, cfg.Templates, cfg.Vocab = c.String("classes"), c.String("templates"), c.String("vocab")
			cfg.Cache, cfg.BatchSize, cfg.Out = c.String("cache"), c.Int("batch-size"), c.String("out")
			cfg.Quiet, cfg.Log = c.Bool("quiet"), c.App.ErrWriter
			if cfg.BatchSize <= 0 {
				return usageError(c, "--batch-size %d: want a positive number", cfg.BatchSize)
			}
			var err error
			if cfg.Backend, err = fieldBackend(c, cuda.F32); err != nil {
				return err
			}
			res, err := bundle.Run(c.Context, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: %s image tower, %d classes, %d template(s), %.1f MB, tuned on cache %s\n",
				res.Out, res.Family, res.Classes, res.Templates, float64(res.Bytes)/1e6, res.Fingerprint)
			return nil
		},
	}, "run", "out")
}

// bundleModelFlag is bundle's --model: any image tower, the run's own by default.
func bundleModelFlag() *cli.StringFlag {
	f := towerModelFlag("the locked tower that made the run's cache; with --weights")
	f.DefaultText = "the run's own: final/'s full model, else the tower its cache records"
	return f
}

// bundleWeightsFlag is bundle's --weights, given with --model.
func bundleWeightsFlag() *cli.StringFlag {
	f := towerWeightsFlag("image tower weights, with --model")
	f.DefaultText = "the run's own"
	return f
}

// bundleVocabFlag is bundle's --vocab: the run's own vocabulary comes before
// $LITCACHE_VOCAB (bundle.Config.Vocab), so its default says so.
func bundleVocabFlag() *cli.StringFlag {
	f := vocabFlag(" for the class prompts")
	f.DefaultText = "the run's, else " + f.DefaultText
	return f
}

// fieldBackend is the backend --device and --gpu ask for, announced on
// stderr as every command does; on the CPU each op splits over --threads
// goroutines (0: all cores).
func fieldBackend(c *cli.Context, prec cuda.Precision) (backend.Backend, error) {
	threads := c.Int("threads")
	if threads < 0 {
		return nil, usageError(c, "--threads %d < 0", threads)
	}
	dev, err := deviceFromFlags(c)
	if err != nil {
		return nil, err
	}
	be, err := openBackend(dev, prec, c.App.ErrWriter)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", commandPath(c), err)
	}
	if _, cpu := be.(*backend.CPU); cpu && threads > 0 {
		be = backend.NewCPUWith(backend.CPUOptions{Threads: threads})
	}
	return be, nil
}

// progressTo is where a progress bar draws: nil (stderr, with a redrawn bar
// on a terminal) when the app writes to stderr, else the app's writer.
func progressTo(w io.Writer) io.Writer {
	if w == os.Stderr {
		return nil
	}
	return w
}

// printBundleCommands tells the demo's user how to use its bundle, with the
// program name they ran (go run's temporary binary becomes go run ./cli/litcache).
func printBundleCommands(w io.Writer, r demo.Result) {
	if r.Bundle == "" {
		return
	}
	prog := "litcache"
	if exe := os.Args[0]; strings.Contains(exe, "go-build") {
		prog = "go run ./cli/litcache"
	}
	fmt.Fprintf(w, "classifier bundle (best run): %s\n", r.Bundle)
	fmt.Fprintf(w, "   %s predict --bundle %s %s\n", prog, r.Bundle, filepath.Join(r.Out, "data", "val"))
	fmt.Fprintf(w, "   %s serve --bundle %s    # then open http://127.0.0.1:8080/\n", prog, r.Bundle)
}
