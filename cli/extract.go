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
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/internal/wds"
	"github.com/litcache/litcache/stages/extract"
)

func extractCommand() *cli.Command {
	d := extract.DefaultConfig()
	return withRequired(&cli.Command{
		Name:  "extract",
		Usage: "run the locked image tower once over webdataset shards into an embedding cache",
		UsageText: `litcache extract --shards PATTERN --model CONFIG --weights FILE|random:SEED --cache DIR [options]

   # ViT-B/16 OpenCLIP weights over 100 training shards, 4 augmented views per image
   litcache extract --shards 'shards/train-{000000..000099}.tar' --model ViT-B-16 \
       --weights open_clip_model.safetensors --cache cache --split train --views 4
   # DINOv2-B/14 (Meta's or HF weights), class token and mean patch token concatenated
   litcache extract --shards 'shards/train-{000000..000099}.tar' --model dinov2-vitb14 \
       --weights dinov2_vitb14_pretrain.safetensors --pool cls+mean --cache cache-dinov2
   # one of 8 machines (also read from SLURM_ARRAY_TASK_ID/COUNT or JOB_COMPLETION_INDEX), then index
   litcache extract ... --worker 3 --workers 8
   litcache cache index cache`,
		Description: `LiT locks the image tower (arXiv 2111.07991), so its output for an image
never changes: this runs it once and keeps the embeddings. Shards are read in
order, decoded and preprocessed (the tower's eval transform: OpenCLIP's for
CLIP, resize, centre crop and ImageNet norm for DINOv2 and Swin; views 1..K-1
are RandomResizedCrop with scale 0.9–1.0, seeded by key and view) on --threads
goroutines, embedded in batches and written as one Arrow part per shard; a
done/ marker, written last, makes each part count. The cache's fingerprint
covers the tower's config, weights, preprocessing and pooling
('litcache cache fingerprint' prints it without a run). A killed run resumes: rerun
the same command and only the shards without a marker are redone.

Samples that cannot be used (undecodable or empty image, bad .cls) go to
CACHE/rejects.jsonl with their key and reason, and so does a member with an
unsafe name (../x, /abs) or of another type (a link), after which the shard
is read on. A shard cut short or otherwise unreadable keeps every complete
sample before the damage; the samples it never gave (by its sizes.json,
img2dataset _stats.json or wids index) count as rejected. The run fails
(after finishing) when more than --max-reject-fraction of the samples were
rejected.

A rerun checks each finished part before skipping it: its input shard must
be the same file content (another shard under the same file name is an
error), and the part must match its marker (size and footer; with --verify
its sha256): a part that does not is made again. Each shard is locked while
its part is made, so a second identical command skips the shards the first
holds (the lock goes with the process, however it ends). The cache records
the producer of its rows (backend, precision, JPEG decoder) and refuses a
worker of another producer unless --allow-mixed-producers is given.

On a GPU the views go up as uint8 through pinned double-buffered memory on
a copy stream and are normalised there, while the tower runs the batch
before. --decode gpu (the default on a GPU with nvJPEG) decodes the JPEGs
with nvJPEG and resizes on the GPU with the CPU's own plans (random resized
crops too); the few images nvJPEG does not take (PNG, CMYK, cut short) are
decoded on the CPU, are counted in the summary, and do not make the cache a
mix of producers: its decoder is nvjpeg either way. A cache started with
--decode cpu on a GPU is another producer (libjpeg-turbo): continue it with
--decode cpu.

Machines: shard i goes to worker i mod --workers. Each writes only its own
parts; run 'litcache cache index DIR' once all are done. On a node with
several GPUs, run one process per GPU: --gpu g --worker g --workers n.`,
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "shards", Usage: "input shards: brace patterns such as 'train-{000000..000099}.tar' (.tar, .tar.gz, .tar.zst); repeat or comma-separate"},
			towerModelFlag("the locked image tower"),
			towerWeightsFlag("image tower weights"),
			poolFlag(),
			&cli.StringFlag{Name: "cache", Usage: "cache folder (created when absent)"},
			&cli.StringFlag{Name: "split", Value: d.Split, Usage: "split these shards belong to (train, val, ...)"},
			&cli.IntFlag{Name: "views", Value: d.Views, Usage: "rows per image: view 0 the eval transform, the others random resized crops"},
			&cli.IntFlag{Name: "batch-size", Value: d.BatchSize, Usage: "image views per tower call", DefaultText: fmt.Sprintf("%d; on a GPU, from its free memory", d.BatchSize)},
			threadsFlag("decoding and preprocessing"),
			&cli.IntFlag{Name: "worker", Usage: "this machine's index among --workers", DefaultText: "$SLURM_ARRAY_TASK_ID - $SLURM_ARRAY_TASK_MIN or $JOB_COMPLETION_INDEX, else 0"},
			&cli.IntFlag{Name: "workers", Usage: "number of machines sharing the shards", DefaultText: "$SLURM_ARRAY_TASK_COUNT or $LITCACHE_WORKERS, else 1"},
			&cli.StringFlag{Name: "dtype", Value: d.DType, Usage: "stored embedding type: float16 or float32"},
			&cli.BoolFlag{Name: "no-normalize", Usage: "store the tower's raw embeddings instead of L2-normalised ones"},
			&cli.Float64Flag{Name: "max-reject-fraction", Value: d.MaxRejectFraction, Usage: "fail when more than this fraction of samples is rejected (a damaged shard's unread samples count, by its sizes.json or index)"},
			&cli.BoolFlag{Name: "verify", Usage: "before skipping a finished part, check its whole sha256 against its marker (always checked: size and Arrow footer)"},
			&cli.BoolFlag{Name: "allow-mixed-producers", Usage: "add rows to a cache whose rows another producer made (backend, precision or JPEG decoder: CPU float32 next to GPU bf16, say)"},
			&cli.StringFlag{Name: "decode", Value: d.Decode, Usage: "where JPEGs are decoded (`gpu|cpu|auto`): gpu is nvJPEG with the resize on the GPU (needs --device cuda; PNGs and JPEGs nvJPEG cannot take are decoded on the CPU, image by image), auto gpu when the device is CUDA and nvJPEG loads, else cpu"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress bar"},
		}, deviceFlags("bf16 on the GPU")...),
		Action: runExtract,
	}, "shards", "model", "weights", "cache")
}

// imageWeights reads --weights: a weights file (which must exist), or
// random:SEED, returned as extract takes it (no file, the seed).
func imageWeights(c *cli.Context) (string, int64, error) {
	w := c.String("weights")
	seed, random, err := clip.ParseRandomWeights(w)
	if err != nil {
		return "", 0, fmt.Errorf("%s: --weights: %w", commandPath(c), err)
	}
	if random {
		return "", seed, nil
	}
	if _, err := os.Stat(w); err != nil {
		return "", 0, fmt.Errorf("%s: --weights: %w", commandPath(c), err)
	}
	return w, 0, nil
}

func runExtract(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
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
	cfg.ModelConfig, cfg.Pool = c.String("model"), c.String("pool")
	tc, err := tower.Resolve(cfg.ModelConfig)
	if err != nil {
		return fmt.Errorf("extract: --model: %w", err)
	}
	if _, err := tc.Pool(cfg.Pool); err != nil {
		return usageError(c, "--pool: %v", err)
	}
	if cfg.Weights, cfg.Seed, err = imageWeights(c); err != nil {
		return err
	}
	cfg.Cache = c.String("cache")
	cfg.Split = c.String("split")
	cfg.Views = c.Int("views")
	cfg.BatchSize = c.Int("batch-size")
	cfg.Threads = c.Int("threads")
	cfg.DType = c.String("dtype")
	cfg.Normalize = !c.Bool("no-normalize")
	cfg.MaxRejectFraction = c.Float64("max-reject-fraction")
	cfg.VerifyParts = c.Bool("verify")
	cfg.AllowMixedProducers = c.Bool("allow-mixed-producers")
	cfg.Decode = c.String("decode")
	switch cfg.Decode {
	case extract.DecodeAuto, extract.DecodeCPU, extract.DecodeGPU:
	default:
		return usageError(c, "--decode %q: want gpu, cpu or auto", cfg.Decode)
	}
	if cfg.Decode == extract.DecodeGPU && c.String("device") == "cpu" {
		return usageError(c, "--decode gpu decodes on the GPU: it needs --device cuda (or auto on a machine with one), not --device cpu")
	}

	w, n, _, err := extract.WorkerFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if c.IsSet("worker") {
		w = c.Int("worker")
	}
	if c.IsSet("workers") {
		n = c.Int("workers")
	}
	cfg.Worker, cfg.NumWorkers = w, n
	if n < 1 || w < 0 || w >= n {
		return usageError(c, "--worker %d --workers %d: want 0 ≤ worker < workers", w, n)
	}
	check := cfg
	if err := check.Validate(); err != nil {
		return err
	}

	dev, err := deviceFromFlags(c)
	if err != nil {
		return err
	}
	if cfg.Backend, err = openBackend(dev, cuda.BF16, c.App.ErrWriter); err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	if gpu, ok := cfg.Backend.(*cuda.Backend); ok && !c.IsSet("batch-size") {
		cfg.BatchSize = gpu.SuggestBatch(tc.BytesPerImage(2))
		fmt.Fprintf(c.App.ErrWriter, "extract: batch size %d from the GPU's free memory (--batch-size to override)\n", cfg.BatchSize)
	}
	cfg.Progress = progress.Options{W: c.App.ErrWriter, Quiet: c.Bool("quiet")}
	cfg.Log = c.App.ErrWriter
	res, err := extract.Run(c.Context, cfg)
	if err != nil && !errors.Is(err, extract.ErrTooManyRejects) {
		return err
	}
	busy := ""
	if res.Busy > 0 {
		busy = fmt.Sprintf(", %d left to another process", res.Busy)
	}
	fmt.Fprintf(c.App.Writer, "cache %s (split %s, worker %d/%d): %d shards, %d already done%s; %d samples, %d rows, %d rejected (%.2f%%)\n",
		cfg.Cache, cfg.Split, cfg.Worker, cfg.NumWorkers, res.Shards, res.Skipped, busy, res.Samples, res.Rows, res.Rejects, 100*res.RejectFraction)
	if res.Samples > 0 {
		gpuIn := ""
		if res.InputSeconds > 0 {
			gpuIn = fmt.Sprintf(", GPU input %.1f s (overlaps the tower)", res.InputSeconds)
		}
		fmt.Fprintf(c.App.Writer, "%.1f images/s; decode+preprocess %.1f s (summed over threads)%s, tower %.1f s, writing %.1f s, wall %.1f s\n",
			res.ImagesPerSecond, res.DecodeSeconds, gpuIn, res.TowerSeconds, res.WriteSeconds, res.WallSeconds)
		if res.PipelineSeconds > 0 {
			fmt.Fprintf(c.App.Writer, "pipeline %.1f images/s (%d samples in %.1f s from the first read to the last part, without start-up)\n",
				float64(res.Samples)/res.PipelineSeconds, res.Samples, res.PipelineSeconds)
		}
	}
	fmt.Fprintf(c.App.Writer, "fingerprint %s\n", res.Fingerprint)
	return err
}
