package cli

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/inat/synth"
	"github.com/litcache/litcache/stages/caption"
)

func captionCommand() *cli.Command {
	def := caption.DefaultConfig()
	syn := synth.DefaultOptions()
	return &cli.Command{
		Name:  "caption",
		Usage: "caption iNat images from their class metadata and write webdataset shards",
		UsageText: `litcache caption --json train.json --images ROOT --out shards/train [flags]
litcache caption --categories categories.csv --images ROOT/train --out shards/train [flags]
litcache caption --categories categories.csv --classes-only --out shards
litcache caption --categories categories.csv --classes-only --recipes "paper;{name};{common_name} {name};auto" --out recipes
litcache caption --categories categories.csv --preview 3308,2738 | --stats
litcache caption --synthetic DIR [--species N ...] [--out shards/train]`,
		Description: `Turns an image-only dataset into an image-text one (the paper's first step):
every image gets its class's caption, by default the paper's
"A photo of the {common_name} {supercategory} {name}" with the catch-all
supercategory "Animalia" left out ("A photo of the Oakmoss Fungi Evernia
prunastri"). Placeholders are the iNat category fields: ` + strings.Join(inat.Fields, ", ") + `.
--fields auto picks the smallest set of fields giving every class its own caption.

--recipes "R1;R2;…" with --classes-only writes one classes.json per caption
recipe, --out/NAME/classes.json: "paper" (the paper's template), "auto" (--fields
auto) or a template ("{name}" → folder name, "{common_name} {name}" →
common_name-name), and a table of how many classes each recipe leaves
indistinct (sharing a caption with another class) in --out/recipes.md and
recipes.json. Captions are per class, so each recipe retrains on the same
cache: litcache sweep --classes recipes/paper/classes.json,recipes/auto/classes.json.
Every classes.json has its recipe beside it (classes.recipe.json).

Input: an iNat2021 json (train.json/val.json, COCO style; images under
--images/file_name), or a folder tree --images/{image_dir_name}/*.jpg with the
categories CSV. Output in --out: shards 000000.tar … (members KEY.jpg KEY.txt
KEY.json KEY.cls; KEY is the 9-digit image id, or the sample index for a
folder tree), sizes.json, classes.json (which tune and eval read) and
skipped.jsonl (missing or unreadable images, with the reason). Shards are
complete or absent; rerunning after an interruption keeps the complete ones.

--synthetic DIR writes a synthetic mini-iNat (generated taxonomy and drawn
photos, the same layout as iNat2021) into DIR; with --out it then captions
DIR/train.json.

Examples:
   litcache caption --json inat/train.json --images inat --out shards/train --max-size 256
   litcache caption --categories categories.csv --preview 3308,5407
   litcache caption --categories categories.csv --stats
   litcache caption --categories categories.csv --classes-only --recipes "paper;{name};auto" --out recipes
   litcache caption --synthetic /tmp/mini --species 30 --out /tmp/mini/shards/train`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "json", Usage: "iNat COCO json: train.json, val.json, .json.gz, or train.json.tar.gz as the dataset ships it"},
			&cli.StringFlag{Name: "images", Usage: "image root (json file names are relative to it), or the folder tree ROOT/{image_dir_name}/*.jpg"},
			&cli.StringFlag{Name: "categories", Usage: "categories CSV (id,name,common_name,supercategory,kingdom,…,image_dir_name)"},
			&cli.StringFlag{Name: "out", Usage: "output folder for shards, classes.json, sizes.json, skipped.jsonl"},
			&cli.StringFlag{Name: "template", Value: def.Template, Usage: "caption template with {field} placeholders (or --fields)"},
			&cli.StringSliceFlag{Name: "omit", Value: cli.NewStringSlice(def.Omit...), Usage: `field=value rendered as nothing (repeatable; "none" for no omission)`},
			&cli.StringFlag{Name: "fields", Usage: `comma list of fields for "A photo of the {f1} {f2} …", or "auto"`},
			&cli.IntFlag{Name: "per-shard", Value: def.PerShard, Usage: "samples per shard"},
			&cli.StringFlag{Name: "compression", Value: "none", Usage: "shard compression: none (.tar), gz (.tar.gz) or zst (.tar.zst)"},
			&cli.IntFlag{Name: "max-size", Usage: "downscale images whose longest side is larger to this and re-encode as JPEG", DefaultText: "the original bytes"},
			&cli.IntFlag{Name: "quality", Value: def.Quality, Usage: "JPEG quality of images re-encoded by --max-size"},
			&cli.BoolFlag{Name: "verify", Usage: "fully decode passed-through images, skipping corrupt ones (slower)"},
			&cli.BoolFlag{Name: "shuffle", Value: def.Shuffle, Usage: "shuffle the sample order (so shards mix classes)"},
			&cli.Int64Flag{Name: "seed", Value: def.Seed, Usage: "shuffle seed (and --synthetic seed)"},
			&cli.IntFlag{Name: "limit", Usage: "caption only the first N samples of the (shuffled) order", DefaultText: "all"},
			threadsFlag("parallel image readers (and --synthetic image painters)"),
			&cli.BoolFlag{Name: "classes-only", Usage: "write classes.json only (no images needed)"},
			&cli.StringFlag{Name: "recipes", Usage: `with --classes-only: one classes.json per caption recipe, ";"-separated: "paper", "auto" or a template`},
			&cli.BoolFlag{Name: "overwrite", Usage: "replace shards of a run with another configuration in --out"},
			&cli.StringFlag{Name: "preview", Usage: "print the captions of these category ids (comma list) and stop"},
			&cli.BoolFlag{Name: "stats", Usage: "print class, image and caption counts and stop"},
			vocabFlag(" for the token-length histogram of --stats"),
			&cli.StringFlag{Name: "synthetic", Usage: "generate a synthetic mini-iNat into this folder first"},
			&cli.IntFlag{Name: "species", Value: syn.Species, Usage: "--synthetic: number of species"},
			&cli.IntFlag{Name: "train-per-species", Value: syn.TrainPerSpecies, Usage: "--synthetic: train images per species"},
			&cli.IntFlag{Name: "val-per-species", Value: syn.ValPerSpecies, Usage: "--synthetic: val images per species"},
			&cli.IntFlag{Name: "image-size", Value: syn.ImageSize, Usage: "--synthetic: longest image side in pixels"},
		},
		Action: runCaption,
	}
}

func runCaption(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	synthetic := c.String("synthetic") != ""
	if err := checkDependencies(c,
		dependency{"species", synthetic, "without --synthetic"},
		dependency{"train-per-species", synthetic, "without --synthetic"},
		dependency{"val-per-species", synthetic, "without --synthetic"},
		dependency{"image-size", synthetic, "without --synthetic"},
		dependency{"quality", c.Int("max-size") > 0, "without --max-size"},
		dependency{"vocab", c.Bool("stats"), "without --stats"},
	); err != nil {
		return err
	}
	if c.IsSet("template") && c.IsSet("fields") {
		return usageError(c, "--template and --fields exclude each other (--fields makes the template)")
	}
	if c.IsSet("recipes") {
		for _, other := range []string{"template", "fields", "preview", "stats", "images", "synthetic"} {
			if c.IsSet(other) {
				return usageError(c, "--recipes and --%s exclude each other (each recipe is a template; recipes need metadata only)", other)
			}
		}
		if !c.Bool("classes-only") || c.String("out") == "" {
			return usageError(c, "--recipes writes classes files only: give --classes-only and --out")
		}
	}
	if c.Bool("stats") {
		if err := checkPaths(c, "vocab"); err != nil {
			return err
		}
	}
	cfg := caption.DefaultConfig()
	cfg.JSON = c.String("json")
	cfg.Images = c.String("images")
	cfg.Categories = c.String("categories")
	cfg.Out = c.String("out")
	cfg.Template = c.String("template")
	cfg.Omit = nil
	for _, o := range c.StringSlice("omit") {
		if o != "none" && o != "" {
			cfg.Omit = append(cfg.Omit, o)
		}
	}
	if f := c.String("fields"); f != "" {
		for _, name := range strings.Split(f, ",") {
			cfg.Fields = append(cfg.Fields, strings.TrimSpace(name))
		}
	}
	cfg.PerShard = c.Int("per-shard")
	cfg.Compression = c.String("compression")
	cfg.MaxSize = c.Int("max-size")
	cfg.Quality = c.Int("quality")
	cfg.Verify = c.Bool("verify")
	cfg.Shuffle = c.Bool("shuffle")
	cfg.Seed = c.Int64("seed")
	cfg.Limit = c.Int("limit")
	cfg.Threads = c.Int("threads")
	cfg.ClassesOnly = c.Bool("classes-only")
	cfg.Overwrite = c.Bool("overwrite")
	cfg.Log = c.App.ErrWriter

	if dir := c.String("synthetic"); dir != "" {
		opt := synth.Options{Species: c.Int("species"), TrainPerSpecies: c.Int("train-per-species"),
			ValPerSpecies: c.Int("val-per-species"), ImageSize: c.Int("image-size"), Seed: c.Int64("seed"), Threads: cfg.Threads}
		if err := synth.Generate(dir, opt); err != nil {
			return fmt.Errorf("caption: --synthetic: %w", err)
		}
		fmt.Fprintf(c.App.Writer, "synthetic mini-iNat: %d species, %d train + %d val images in %s (train.json, val.json, categories.csv)\n",
			opt.Species, opt.Species*opt.TrainPerSpecies, opt.Species*opt.ValPerSpecies, dir)
		if cfg.Out == "" && !c.IsSet("preview") && !c.Bool("stats") {
			return nil
		}
		if cfg.JSON == "" && cfg.Categories == "" {
			cfg.JSON = filepath.Join(dir, "train.json")
		}
		if cfg.Images == "" {
			cfg.Images = dir
		}
	}

	if p := c.String("preview"); p != "" {
		var ids []int
		for _, s := range strings.Split(p, ",") {
			id, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("caption: --preview %q: %q is not a category id", p, s)
			}
			ids = append(ids, id)
		}
		lines, err := caption.Preview(cfg, ids)
		if err != nil {
			return err
		}
		for _, l := range lines {
			fmt.Fprintln(c.App.Writer, l)
		}
		return nil
	}
	if c.Bool("stats") {
		st, err := caption.ComputeStats(cfg, vocabPath(c))
		if err != nil {
			return err
		}
		st.Print(c.App.Writer)
		return nil
	}
	if c.IsSet("recipes") {
		return runRecipes(c, cfg)
	}
	res, err := caption.Run(c.Context, cfg)
	if err != nil {
		return err
	}
	if cfg.ClassesOnly {
		fmt.Fprintf(c.App.Writer, "%s: %d classes (%d distinct captions)\n",
			filepath.Join(cfg.Out, "classes.json"), res.Classes, res.DistinctCaptions)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "%s: %d classes (%d distinct captions); %d samples in %d shards (%d kept from an earlier run), %d skipped\n",
		cfg.Out, res.Classes, res.DistinctCaptions, res.Samples, res.Shards, res.ShardsKept, res.Skipped)
	return nil
}

// runRecipes writes one classes.json per recipe and prints their table.
func runRecipes(c *cli.Context, cfg caption.Config) error {
	list, err := caption.ParseRecipes(c.String("recipes"))
	if err != nil {
		return usageError(c, "%v", strings.TrimPrefix(err.Error(), "caption: "))
	}
	rs, err := caption.Recipes(cfg, list)
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprint(w, caption.RecipeTable(rs).Markdown())
	for _, r := range rs {
		fmt.Fprintf(w, "wrote %s\n", r.ClassesFile)
	}
	fmt.Fprintf(w, "wrote %s\n", filepath.Join(cfg.Out, caption.RecipesMarkdown))
	return nil
}
