package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/wds"
	"github.com/litcache/litcache/stages/extract"
)

func extractCommand() *cli.Command {
	d := extract.DefaultConfig()
	return &cli.Command{
		Name:  "extract",
		Usage: "run the locked image tower once over webdataset shards into an embedding cache",
		UsageText: `litcache extract --shards PATTERN --model CONFIG [--weights FILE] --cache DIR [options]

   # ViT-B/16 OpenCLIP weights over 100 training shards, 4 augmented views per image
   litcache extract --shards 'shards/train-{000000..000099}.tar' --model ViT-B-16 \
       --weights open_clip_model.safetensors --cache cache --split train --views 4
   # one of 8 machines (also read from SLURM_ARRAY_TASK_ID/COUNT or JOB_COMPLETION_INDEX), then index
   litcache extract ... --worker 3 --workers 8
   litcache cache index cache`,
		Description: `LiT locks the image tower (arXiv 2111.07991), so its output for an image
never changes: this runs it once and keeps the embeddings. Shards are read in
order, decoded and preprocessed (OpenCLIP's eval transform; views 1..K-1 are
RandomResizedCrop with scale 0.9–1.0, seeded by key and view) on all cores,
embedded in batches and written as one Arrow part per shard; a done/ marker,
written last, makes each part count. A killed run resumes: rerun the same
command and only the shards without a marker are redone.

Samples that cannot be used (undecodable or empty image, bad .cls) go to
CACHE/rejects.jsonl with their key and reason; a shard cut short keeps the
samples before the damage. The run fails (after finishing) when more than
--max-reject-fraction of the samples were rejected.

Workers: shard i goes to worker i mod --workers. Each writes only its own
parts; run 'litcache cache index DIR' once all are done.`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "shards", Usage: "input shards: brace patterns such as 'train-{000000..000099}.tar' (.tar, .tar.gz, .tar.zst); repeat or comma-separate", Required: true},
			&cli.StringFlag{Name: "model", Usage: "image tower config: built-in name (" + strings.Join(clip.BuiltinNames(), ", ") + ") or OpenCLIP JSON", Required: true},
			&cli.StringFlag{Name: "weights", Usage: "OpenCLIP or HF safetensors weights; omit for a random tower from --seed (demos, benchmarks)"},
			&cli.Int64Flag{Name: "seed", Value: d.Seed, Usage: "seed of the random tower when --weights is omitted"},
			&cli.StringFlag{Name: "cache", Usage: "cache folder (created when absent)", Required: true},
			&cli.StringFlag{Name: "split", Value: d.Split, Usage: "split these shards belong to (train, val, ...)"},
			&cli.IntFlag{Name: "views", Value: d.Views, Usage: "rows per image: view 0 the eval transform, the others random resized crops"},
			&cli.IntFlag{Name: "batch-size", Value: d.BatchSize, Usage: "image views per tower call"},
			&cli.IntFlag{Name: "decoders", Usage: "decode+preprocess goroutines (0 = all cores)"},
			&cli.IntFlag{Name: "worker", Value: -1, Usage: "this worker's index (default: $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX, else 0)"},
			&cli.IntFlag{Name: "workers", Value: 0, Usage: "number of workers (default: $SLURM_ARRAY_TASK_COUNT or $LITCACHE_WORKERS, else 1)"},
			&cli.StringFlag{Name: "dtype", Value: d.DType, Usage: "stored embedding type: float16 or float32"},
			&cli.BoolFlag{Name: "no-normalize", Usage: "store the tower's raw embeddings instead of L2-normalised ones"},
			&cli.Float64Flag{Name: "max-reject-fraction", Value: d.MaxRejectFraction, Usage: "fail when more than this fraction of samples is rejected"},
			&cli.StringFlag{Name: "device", Value: "auto", Usage: "cpu, cuda (bf16 on the GPU), or auto (the GPU when one is found and passes its self-check, else the CPU)"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress bar"},
		},
		Action: runExtract,
	}
}

func runExtract(c *cli.Context) error {
	cfg := extract.DefaultConfig()
	var shards []string
	for _, pat := range c.StringSlice("shards") {
		for _, p := range strings.Split(pat, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			got, err := wds.ExpandPattern(p)
			if err != nil {
				return fmt.Errorf("extract: --shards %q: %w", p, err)
			}
			shards = append(shards, got...)
		}
	}
	if len(shards) == 0 {
		return fmt.Errorf("extract: --shards matched no file")
	}
	for _, s := range shards {
		if _, err := os.Stat(s); err != nil {
			return fmt.Errorf("extract: --shards: %w", err)
		}
	}
	cfg.Shards = shards
	cfg.ModelConfig = c.String("model")
	cfg.Weights = c.String("weights")
	if cfg.Weights != "" {
		if _, err := os.Stat(cfg.Weights); err != nil {
			return fmt.Errorf("extract: --weights: %w", err)
		}
	}
	cfg.Seed = c.Int64("seed")
	cfg.Cache = c.String("cache")
	cfg.Split = c.String("split")
	cfg.Views = c.Int("views")
	cfg.BatchSize = c.Int("batch-size")
	cfg.Threads = c.Int("decoders")
	cfg.DType = c.String("dtype")
	cfg.Normalize = !c.Bool("no-normalize")
	cfg.MaxRejectFraction = c.Float64("max-reject-fraction")

	w, n, _, err := extract.WorkerFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if c.Int("worker") >= 0 {
		w = c.Int("worker")
	}
	if c.Int("workers") > 0 {
		n = c.Int("workers")
	}
	cfg.Worker, cfg.NumWorkers = w, n

	if cfg.Backend, err = openBackend(c.String("device"), cuda.BF16, c.App.ErrWriter); err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	if gpu, ok := cfg.Backend.(*cuda.Backend); ok && !c.IsSet("batch-size") {
		mc, err := clip.LoadConfig(cfg.ModelConfig)
		if err != nil {
			return fmt.Errorf("extract: --model: %w", err)
		}
		cfg.BatchSize = gpu.SuggestBatch(mc.VisionBytesPerImage(2))
		fmt.Fprintf(c.App.ErrWriter, "extract: batch size %d from the GPU's free memory (--batch-size to override)\n", cfg.BatchSize)
	}
	cfg.Progress = progress.Options{W: c.App.ErrWriter, Quiet: c.Bool("quiet")}
	cfg.Log = c.App.ErrWriter
	res, err := extract.Run(c.Context, cfg)
	if err != nil && !errors.Is(err, extract.ErrTooManyRejects) {
		return err
	}
	fmt.Fprintf(c.App.Writer, "cache %s (split %s, worker %d/%d): %d shards, %d already done; %d samples, %d rows, %d rejected (%.2f%%)\n",
		cfg.Cache, cfg.Split, cfg.Worker, cfg.NumWorkers, res.Shards, res.Skipped, res.Samples, res.Rows, res.Rejects, 100*res.RejectFraction)
	if res.Samples > 0 {
		fmt.Fprintf(c.App.Writer, "%.1f images/s; decode+preprocess %.1f s (summed over decoders), tower %.1f s, writing %.1f s, wall %.1f s\n",
			res.ImagesPerSecond, res.DecodeSeconds, res.TowerSeconds, res.WriteSeconds, res.WallSeconds)
	}
	fmt.Fprintf(c.App.Writer, "fingerprint %s\n", res.Fingerprint)
	return err
}
