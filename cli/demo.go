package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/stages/demo"
	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/stages/sweep"
)

func demoCommand() *cli.Command {
	d := demo.DefaultConfig()
	warm := make([]string, len(d.Warmups))
	for i, w := range d.Warmups {
		warm[i] = fmt.Sprint(w)
	}
	return &cli.Command{
		Name:  "demo",
		Usage: "the whole flow on a synthetic mini-iNat: caption → extract → warm-up sweep → zero-shot report",
		UsageText: `litcache demo [--out DIR] [--species N] [--warmup 5,40,120] ...

   litcache demo                              # into ./demo-out (the README states its time)
   litcache demo --species 50 --epochs 15     # a harder, longer run`,
		Description: `Runs every stage on an embedded default, with no file from outside the
repository:

  1. a synthetic mini-iNat (procedurally drawn photos whose look follows the
     taxonomy) in iNat2021's json + folder layout;
  2. caption: captioned webdataset shards and classes.json, with the paper's template;
  3. the captions tokenized with CLIP's own BPE vocabulary
     (bpe_simple_vocab_16e6.txt.gz, built into the binary);
  4. extract: a small ViT with random weights as the locked image tower, run once
     over every image into the cache;
  5. sweep: LiT tuning of a text tower from scratch against the cache, one run per
     warm-up, with overlay plots of loss and top-1/top-5 per epoch;
  6. eval: the zero-shot report (per rank, per supercategory, hardest classes,
     confusions) of the best run, and the untuned text tower as a baseline;
     and the best run's classifier bundle for litcache predict and serve.

It ends by printing the results table (top-1/top-5 with chance beside them) and
where the report and plots are. DIR is replaced by each run.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "out", Value: d.Out, Usage: "output folder"},
			&cli.IntFlag{Name: "species", Value: d.Species, Usage: "number of synthetic species (classes)"},
			&cli.IntFlag{Name: "train-per-species", Value: d.TrainPerSpecies, Usage: "training images per species"},
			&cli.IntFlag{Name: "val-per-species", Value: d.ValPerSpecies, Usage: "val images per species"},
			&cli.IntFlag{Name: "image-size", Value: d.ImageSize, Usage: "longest side of the synthetic photos in pixels"},
			&cli.StringFlag{Name: "warmup", Value: strings.Join(warm, ","), Usage: "warm-up steps to sweep (comma-separated)"},
			&cli.IntFlag{Name: "epochs", Value: d.Epochs, Usage: "epochs per tuning run"},
			&cli.IntFlag{Name: "batch-size", Value: d.BatchSize, Usage: "batch size"},
			&cli.Float64Flag{Name: "lr", Value: d.LR, Usage: "base learning rate"},
			&cli.IntFlag{Name: "views", Value: d.Views, Usage: "cached views per training image: view 0 the eval crop, the others random crops"},
			&cli.Int64Flag{Name: "seed", Value: d.Seed, Usage: "seed of the synthetic data and the tuning runs"},
			&cli.Int64Flag{Name: "image-seed", Value: d.ImageSeed, Usage: "seed of the random image tower"},
			threadsFlag("parallel image drawing, captioning and decoding"),
			&cli.BoolFlag{Name: "quiet", Usage: "print only the results"},
		}, deviceFlags("the image tower and the tuning in bf16 (the evaluation and the bundle stay on the CPU in float32)")...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			dev, err := deviceFromFlags(c)
			if err != nil {
				return err
			}
			cfg := d
			cfg.Out, cfg.Species = c.String("out"), c.Int("species")
			cfg.TrainPerSpecies, cfg.ValPerSpecies, cfg.ImageSize = c.Int("train-per-species"), c.Int("val-per-species"), c.Int("image-size")
			cfg.Epochs, cfg.BatchSize, cfg.LR, cfg.Views = c.Int("epochs"), c.Int("batch-size"), c.Float64("lr"), c.Int("views")
			cfg.Seed, cfg.ImageSeed, cfg.Threads = c.Int64("seed"), c.Int64("image-seed"), c.Int("threads")
			cfg.Quiet, cfg.Log = c.Bool("quiet"), c.App.ErrWriter
			ws, err := intList(c, "warmup")
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			cfg.Warmups = ws
			switch {
			case cfg.ImageSize < 16:
				return fmt.Errorf("demo: --image-size %d: want at least 16", cfg.ImageSize)
			case cfg.Epochs < 1:
				return fmt.Errorf("demo: --epochs %d: want at least 1", cfg.Epochs)
			case cfg.Views < 1 || cfg.Views > 255:
				return fmt.Errorf("demo: --views %d: want 1..255", cfg.Views)
			case cfg.BatchSize < 2:
				return fmt.Errorf("demo: --batch-size %d: want at least 2", cfg.BatchSize)
			case cfg.BatchSize > cfg.Species*cfg.TrainPerSpecies:
				return fmt.Errorf("demo: --batch-size %d exceeds the %d training images", cfg.BatchSize, cfg.Species*cfg.TrainPerSpecies)
			}
			for _, w := range ws {
				if w < 0 {
					return fmt.Errorf("demo: --warmup %d < 0", w)
				}
			}
			if cfg.Backend, err = openBackend(dev, cuda.BF16, c.App.ErrWriter); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			res, err := demo.Run(c.Context, cfg)
			if err != nil {
				return err
			}
			if js, err := json.MarshalIndent(res, "", "  "); err == nil {
				os.WriteFile(filepath.Join(cfg.Out, "demo.json"), append(js, '\n'), 0o644)
			}
			printDemo(c, res)
			return nil
		},
	}
}

// printDemo prints the results table and where everything is.
func printDemo(c *cli.Context, r demo.Result) {
	w := c.App.Writer
	fmt.Fprintf(w, "\nlitcache demo: %d species, %d train / %d val images, done in %s\n\n",
		r.Classes, r.Train, r.Val, (time.Duration(r.Seconds*1e3) * time.Millisecond).Round(100*time.Millisecond))
	fmt.Fprintf(w, "Zero-shot accuracy on the val split (%d classes):\n\n", r.Classes)
	fmt.Fprint(w, r.Table().Markdown())
	fmt.Fprintf(w, "\nstage times:")
	for _, s := range r.Stages {
		fmt.Fprintf(w, " %s %.1fs;", s.Stage, s.Seconds)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "\nreport (best run, %s): %s\n", r.Best, filepath.Join(r.ReportDir, evaluate.ReportMarkdown))
	fmt.Fprintf(w, "   plots: %s, %s\n", filepath.Join(r.ReportDir, evaluate.RankChart), filepath.Join(r.ReportDir, evaluate.SupercategoryPlot))
	fmt.Fprintf(w, "sweep summary: %s\n", filepath.Join(r.SweepDir, sweep.SummaryMarkdown))
	if r.Sweep != nil {
		var pngs []string
		for _, f := range r.Sweep.Files {
			if strings.HasSuffix(f, ".png") {
				pngs = append(pngs, filepath.Base(f))
			}
		}
		fmt.Fprintf(w, "   plots in %s: %s\n", r.SweepDir, strings.Join(pngs, ", "))
	}
	printBundleCommands(w, r)
	fmt.Fprintf(w, "tokenizer: CLIP's bpe_simple_vocab_16e6.txt.gz, built into the binary\n")
}
