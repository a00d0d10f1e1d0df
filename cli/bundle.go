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
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/stages/bundle"
	"github.com/litcache/litcache/stages/demo"
)

func bundleCommand() *cli.Command {
	d := bundle.DefaultConfig()
	return &cli.Command{
		Name:  "bundle",
		Usage: "one file for field use: the locked image tower, a tuned run's class embeddings and the taxonomy",
		UsageText: `litcache bundle --run RUN --model CONFIG --weights FILE|random:SEED [--classes classes.json] [--templates caption|openai|FILE] --out FILE

   # the paper's setting: a tuned ViT-L/14 text tower and its image tower
   litcache bundle --run sweeps/warmup/warmup-1000 --model ViT-L-14-quickgelu \
       --weights open_clip_model.safetensors --classes shards/train/classes.json --out inat21.bundle.safetensors
   # the demo's (litcache demo writes this one itself)
   litcache bundle --run demo-out/sweep/warmup-40 --model demo-out/demo_model.json --weights random:7 \
       --out demo-out/demo.bundle.safetensors`,
		Description: `Writes one safetensors file that litcache predict and litcache serve need
alone: the locked image tower (float32), every class's text embedding
precomputed with the run's tuned text tower and the templates (each prompt
normalised, a class's prompts averaged, as eval does), logit_scale, and in
the header metadata the model config, the preprocessing, the fingerprint of
the cache the run was tuned on, and each class's id, name, common name and
taxonomy (kingdom … species).

--model and --weights must be the image tower that made the run's cache: the
bundle computes the tower's cache fingerprint and refuses any other.
--classes and --vocab default to the run's (its config.json); --cache says
where the run's cache is when it has moved.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "run", Usage: "tune run folder (config.json + final/)", Required: true},
			&cli.StringFlag{Name: "model", Usage: "image tower config: built-in name (" + strings.Join(clip.BuiltinNames(), ", ") + ") or OpenCLIP JSON", Required: true},
			&cli.StringFlag{Name: "weights", Usage: "image tower weights: OpenCLIP or HF safetensors, or random:SEED", Required: true},
			&cli.StringFlag{Name: "classes", Usage: "classes.json (default: the run's)"},
			&cli.StringFlag{Name: "templates", Value: d.Templates, Usage: `"caption" (each class's caption), "openai" (80 prompts), or a file of templates`},
			// No EnvVars: the run's own vocabulary comes before $LITCACHE_VOCAB (bundle.Config.Vocab).
			&cli.StringFlag{Name: "vocab", Usage: "BPE vocabulary (default: the run's, else $LITCACHE_VOCAB, else CLIP's)"},
			&cli.StringFlag{Name: "cache", Usage: "where the run's training cache is now (default: where the run recorded it)"},
			&cli.StringFlag{Name: "out", Usage: "bundle file to write (e.g. model.bundle.safetensors)", Required: true},
			&cli.IntFlag{Name: "threads", Usage: "CPU threads (0 = all cores)"},
			&cli.StringFlag{Name: "device", Value: "auto", Usage: "cpu, cuda, or auto (the GPU when one is found and passes its self-check)"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress output"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("bundle: unexpected argument %q (all inputs are flags)", c.Args().First())
			}
			cfg := d
			cfg.Run, cfg.Model, cfg.Weights = c.String("run"), c.String("model"), c.String("weights")
			cfg.Classes, cfg.Templates, cfg.Vocab = c.String("classes"), c.String("templates"), c.String("vocab")
			cfg.Cache, cfg.Out, cfg.Quiet, cfg.Log = c.String("cache"), c.String("out"), c.Bool("quiet"), c.App.ErrWriter
			var err error
			if cfg.Backend, err = fieldBackend(c, cuda.F32); err != nil {
				return fmt.Errorf("bundle: %w", err)
			}
			res, err := bundle.Run(c.Context, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: %d classes, %d template(s), %.1f MB, tuned on cache %s\n",
				res.Out, res.Classes, res.Templates, float64(res.Bytes)/1e6, res.Fingerprint)
			return nil
		},
	}
}

// fieldBackend is the backend of --device with --threads: the CPU backend
// splits its work over that many goroutines (0: all cores).
func fieldBackend(c *cli.Context, prec cuda.Precision) (backend.Backend, error) {
	threads := c.Int("threads")
	if threads < 0 {
		return nil, fmt.Errorf("--threads %d < 0", threads)
	}
	var log io.Writer = c.App.ErrWriter
	if c.Bool("quiet") {
		log = io.Discard
	}
	be, err := openBackend(c.String("device"), prec, log)
	if err != nil {
		return nil, err
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
