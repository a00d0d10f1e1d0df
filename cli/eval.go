package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/store"
)

func evalCommand() *cli.Command {
	d := evaluate.DefaultConfig()
	return withRequired(&cli.Command{
		Name:  "eval",
		Usage: "zero-shot top-1/top-5 of a text tower on a cache, per rank and supercategory, with a report",
		UsageText: `litcache eval --cache VAL --classes classes.json --weights RUN|FILE|random:SEED [--model CONFIG] [--out DIR]

   # tune's output (a run folder uses its final/; a checkpoint folder works too)
   litcache eval --cache cache/val --classes classes.json --weights runs/lit --out runs/lit/eval
   # the untuned baseline: pretrained OpenCLIP weights, OpenAI's 80 prompts on the common names
   litcache eval --cache cache/val --classes classes.json --weights open_clip_model.safetensors \
       --model ViT-B-32-quickgelu --templates openai --out eval/baseline`,
		Description: `Builds a zero-shot classifier over every class of classes.json from prompt
templates through the text tower (each prompt's embedding normalised, a class's
prompts averaged and renormalised, as OpenCLIP does), scores the cached image
embeddings (view 0, L2-normalised) by cosine similarity, and reports top-1 and
top-5 with chance beside them, accuracy at every taxonomic rank (a prediction
counts at a rank when its taxon there is right), per supercategory, the hardest
classes and the most confused pairs.

--weights: a tune run folder (its final/), a checkpoint folder, a weights file
(OpenCLIP or HF names; --model when no open_clip_config.json is beside it), or
random:SEED with --model (a random-init text tower: the floor to beat). A tuned
final/ serves in either form, the full model (tune's default) or the text tower
alone (--text-only); a full model is refused on a cache made by another image
tower than the one it holds.
--split follows the rule of every reader: the named split, or the cache's only
split, or "val" in a cache holding several. Prompts are tokenized with CLIP's
BPE vocabulary, built in (--vocab or $LITCACHE_VOCAB for another file).

--templates: "caption" (each class's caption from classes.json), "openai" (the
80 ImageNet prompts with {} = the common name), or a file with one template per
line using {} or {field} ({caption}, {name}, {common_name}, {genus}, ...).

With --out: eval.json, eval.md, accuracy_by_rank.png, accuracy_by_supercategory.png.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "cache", Usage: "image-embedding cache folder (from litcache extract)"},
			splitFlag("split", store.SplitVal, "the cache"),
			&cli.StringFlag{Name: "classes", Usage: "classes.json (from litcache caption): the classifier's classes"},
			weightsFlag("text tower", ", a tune run folder (its final/), a checkpoint folder"),
			evalModelFlag(),
			vocabFlag(""),
			&cli.IntFlag{Name: "context", Usage: "token context", DefaultText: "the model's context_length"},
			&cli.StringFlag{Name: "templates", Value: d.Templates, Usage: `"caption", "openai", or a file of templates`},
			&cli.StringFlag{Name: "subject", Usage: `what {} in the templates stands for: name, caption, genus, ...`, DefaultText: "common_name, falling back to name"},
			&cli.IntFlag{Name: "hardest", Value: d.Hardest, Usage: "how many hardest classes to list"},
			&cli.IntFlag{Name: "pairs", Value: d.Pairs, Usage: "how many confused pairs to list"},
			&cli.StringFlag{Name: "expect-fingerprint", Usage: "refuse a cache made by another image tower"},
			&cli.StringFlag{Name: "out", Usage: "report folder (eval.json, eval.md, PNGs)", DefaultText: "no report, figures on stdout only"},
			&cli.StringFlag{Name: "title", Value: d.Title, Usage: "report heading"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress output"},
		}, deviceFlags("float32 on the GPU")...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cfg := d
			cfg.Cache, cfg.Split, cfg.Classes = c.String("cache"), c.String("split"), c.String("classes")
			cfg.Weights, cfg.Model, cfg.Vocab = c.String("weights"), c.String("model"), vocabPath(c)
			cfg.ContextLen, cfg.Templates, cfg.Subject = c.Int("context"), c.String("templates"), c.String("subject")
			cfg.Hardest, cfg.Pairs = c.Int("hardest"), c.Int("pairs")
			cfg.ExpectFingerprint, cfg.Out, cfg.Title = c.String("expect-fingerprint"), c.String("out"), c.String("title")
			cfg.Quiet, cfg.Log = c.Bool("quiet"), c.App.ErrWriter
			if cfg.ContextLen < 0 {
				return usageError(c, "--context %d < 0", cfg.ContextLen)
			}
			if err := checkDependencies(c, dependency{"subject", cfg.Templates != "caption", "with --templates caption (it has no {})"}); err != nil {
				return err
			}
			if err := checkPaths(c, "cache", "classes", "weights", "vocab"); err != nil {
				return err
			}
			if _, _, _, err := evaluate.ResolveTextTower(cfg.Weights, cfg.Model); err != nil {
				return err
			}
			dev, err := deviceFromFlags(c)
			if err != nil {
				return err
			}
			if cfg.Backend, err = openBackend(dev, cuda.F32, c.App.ErrWriter); err != nil {
				return fmt.Errorf("eval: %w", err)
			}
			res, err := evaluate.Run(c.Context, cfg)
			if err != nil {
				return err
			}
			w := c.App.Writer
			fmt.Fprintf(w, "%d images, %d classes (%s templates)\n", res.Images, res.Classes, res.Templates)
			fmt.Fprintf(w, "top-1 %.4f  top-5 %.4f   chance %.4f / %.4f\n", res.Top1, res.Top5, res.Chance1, res.Chance5)
			for _, r := range res.Ranks {
				fmt.Fprintf(w, "  %-8s top-1 %.4f  top-5 %.4f  (%d taxa)\n", r.Rank, r.Top1, r.Top5, r.Taxa)
			}
			if len(res.Files) > 0 {
				fmt.Fprintf(w, "report: %s\n", res.Files[1])
				for _, f := range res.Files[2:] {
					fmt.Fprintf(w, "plot:   %s\n", f)
				}
			}
			return nil
		},
	}, "cache", "classes", "weights")
}

// evalModelFlag is --model, which eval reads beside the weights by default.
func evalModelFlag() *cli.StringFlag {
	f := modelFlag("its text_cfg is the text tower's")
	f.DefaultText = "open_clip_config.json beside the weights"
	return f
}
