package cli

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/stages/bundle"
	"github.com/litcache/litcache/stages/predict"
)

func predictCommand() *cli.Command {
	d := predict.DefaultConfig()
	return withRequired(&cli.Command{
		Name:  "predict",
		Usage: "classify photos with a bundle: top-k species or taxa, as a table, JSON or CSV",
		UsageText: `litcache predict --bundle B [--top 5] [--rank species|genus|...|kingdom] [--format table|json|csv] PATH...

   litcache predict --bundle demo-out/demo.bundle.safetensors demo-out/data/val
   litcache predict --bundle inat21.bundle.safetensors --rank genus --format csv photos/ > genus.csv
   litcache predict --bundle inat21.bundle.safetensors --format json IMG_0042.jpg`,
		Description: `Each PATH is a photo or a folder, walked recursively for ` + strings.Join(predict.Extensions, ", ") + `
(hidden files and folders left out). Photos are turned upright by their EXIF
orientation, decoded and preprocessed on all cores, and run through the
bundle's image tower in batches; the scores are the softmax over the classes
of exp(logit_scale)·cosine, as CLIP's zero-shot classifier and pybioclip give.

--rank above species sums the probabilities of each taxon's species at that
rank (pybioclip's Rank): "genus Junco 0.93" is the chance the photo shows some
Junco. A photo that cannot be read is a row with its error, never a stop.

CSV: one row per photo and prediction,
  ` + strings.Join(predict.CSVHeader, ",") + `
(a photo that could not be read has one row, k empty, the error filled).
JSON: an array of {"file", "rank", "predictions": [{"name", "common_name",
"score", "id", "taxonomy"}], "error"}. Rows go out in input order as photos
finish; a progress bar goes to stderr on a terminal.

The bundle holds everything: no cache is read (so no --split), no text tower
or vocabulary is loaded.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "bundle", Usage: "classifier bundle `FILE` (from litcache bundle)"},
			&cli.IntFlag{Name: "top", Value: d.Top, Usage: "predictions per photo"},
			&cli.StringFlag{Name: "rank", Value: d.Rank, Usage: "taxonomic rank: " + bundle.RankNames()},
			&cli.StringFlag{Name: "format", Value: d.Format, Usage: "table, json or csv"},
			threadsFlag("photo decoders, and the CPU backend's parallelism"),
			&cli.IntFlag{Name: "batch-size", Usage: "most photos per image-tower call", DefaultText: "16 on the CPU, 64 on a GPU"},
			&cli.Float64Flag{Name: "max-megapixels", Value: float64(d.Limits.MaxPixels) / 1e6, Usage: "refuse photos larger than this (checked from the header)"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress bar or summary line"},
		}, deviceFlags("the image tower in bf16")...),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageError(c, "no photo or folder given")
			}
			for _, a := range c.Args().Slice() {
				if strings.HasPrefix(a, "-") {
					return usageError(c, "%q after the paths: put options before PATH... (litcache predict --bundle B --rank genus photos/)", a)
				}
			}
			cfg := d
			cfg.Bundle, cfg.Paths = c.String("bundle"), c.Args().Slice()
			cfg.Top, cfg.Rank, cfg.Format = c.Int("top"), c.String("rank"), c.String("format")
			cfg.Threads, cfg.BatchSize = c.Int("threads"), c.Int("batch-size")
			cfg.Limits.MaxPixels = int(c.Float64("max-megapixels") * 1e6)
			cfg.Out = c.App.Writer
			cfg.Progress = progress.Options{W: progressTo(c.App.ErrWriter), Quiet: c.Bool("quiet")}
			if !c.Bool("quiet") {
				cfg.Log = c.App.ErrWriter
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if cfg.Limits.MaxPixels <= 0 {
				return usageError(c, "--max-megapixels %g: want a positive number", c.Float64("max-megapixels"))
			}
			if err := checkPaths(c, "bundle"); err != nil {
				return err
			}
			var err error
			if cfg.Backend, err = fieldBackend(c, cuda.BF16); err != nil {
				return err
			}
			_, err = predict.Run(c.Context, cfg)
			return err
		},
	}, "bundle")
}
