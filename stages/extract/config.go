// Package extract is the extract stage: run the locked image tower once over
// every image of a set of webdataset shards and keep the embeddings in the
// cache (store). LiT locks the image tower (arXiv 2111.07991), so its output
// for an image never changes: computing it once serves every later run.
//
// Pipeline (bounded channels, so memory stays flat whatever the data size;
// each stage in its own file, joined in pipeline.go):
//
//	reader ──samples──► decode pool (Threads) ──views──► batcher (shard order) ──batches──►
//	    tower (backend) ──embeddings──► writer (one part per shard)
//
// One part per input shard; a shard whose done/ marker exists is skipped, so
// a killed run resumes where it stopped with nothing lost and nothing twice.
// Skipped only after a check (plan.go): the shard must be the one the part
// was made from, and the part must match its marker, else it is made again.
// Each shard's part is locked while it is made (claim.go), so two runs over
// the same shards share them. The cache records the producer of the rows
// (producer.go) and refuses another unless Config.AllowMixedProducers.
package extract

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/store"
)

// Config is one extraction run.
type Config struct {
	// Shards are the input webdataset shards (already expanded).
	Shards []string
	// ModelConfig is the image tower: a built-in name of any family or a
	// config file (tower.Resolve: CLIP, DINOv2, Swin).
	ModelConfig string
	// Weights is a safetensors file under any of the family's naming
	// schemes, or "random:SEED"; "" means a random initialisation with Seed
	// (for demos and benchmarks).
	Weights string
	// Seed of the random initialisation when Weights is "".
	Seed int64
	// Pool is the tower's pooling ("" = the family's default; tower.Config.Pools).
	Pool string
	// Cache is the cache directory (created when absent).
	Cache string
	// Split names the split these shards belong to ("train", "val", ...).
	Split string
	// Views per image: view 0 is the eval transform, views 1..Views-1 random
	// resized crops (scale 0.9–1.0, ratio 3/4–4/3, as OpenCLIP trains),
	// seeded by (key, view) so that they are the same on every run.
	Views int
	// BatchSize is the number of rows (image views) per tower call.
	BatchSize int
	// Threads is the number of decode+preprocess goroutines (0: all cores).
	Threads int
	// Worker and NumWorkers split the shards between processes: this one
	// takes the shards whose index i satisfies i mod NumWorkers == Worker.
	Worker, NumWorkers int
	// DType of the stored embeddings: "float16" (default) or "float32".
	DType string
	// Normalize stores L2-normalised embeddings (default true).
	Normalize bool
	// MaxRejectFraction: when more than this fraction of the samples of
	// this worker's shards are rejected, Run fails after finishing all work.
	MaxRejectFraction float64
	// Backend runs the tower; nil means backend.NewCPU().
	Backend backend.Backend
	// Decode is where images are decoded: DecodeGPU (nvJPEG, and the resize
	// and normalisation on the GPU; a CUDA Backend is needed), DecodeCPU,
	// or DecodeAuto (default: the GPU when the Backend is CUDA and nvJPEG
	// loads). With a CUDA Backend and the CPU decoding, the views still go
	// to the GPU as uint8 and are normalised there.
	Decode string
	// AllowMixedProducers lets this run add parts to a cache whose rows
	// were made by another producer (backend kind, precision, JPEG decoder:
	// CPU float32 next to GPU bf16, say); without it such a run is refused.
	AllowMixedProducers bool
	// VerifyParts checks each finished part's whole sha256 against its
	// marker before counting it done (always: size and Arrow footer).
	VerifyParts bool
	// Progress configures the progress bar.
	Progress progress.Options
	// Log receives one-line messages (nil: stderr).
	Log io.Writer
	// Hooks are called at points of the run (tests use them to crash it).
	Hooks Hooks
}

// Hooks observe the run; each is called when not nil, on the writer's
// goroutine (so hooks need no locking among themselves).
type Hooks struct {
	// AfterBatch runs after the writer added the rows of batch b (0-based)
	// of a shard, before the shard's part is committed.
	AfterBatch func(shard string, b int)
	// Part runs inside each part's commit (see store.Hooks).
	Part store.Hooks
}

// DefaultConfig is one worker on all cores, float16, one view, batch 64,
// normalised embeddings, at most 1% rejects.
func DefaultConfig() Config {
	return Config{
		Split:             "train",
		Views:             1,
		BatchSize:         64,
		Threads:           0,
		Worker:            0,
		NumWorkers:        1,
		DType:             store.Float16,
		Normalize:         true,
		MaxRejectFraction: 0.01,
		Decode:            DecodeAuto,
	}
}

// Validate checks cfg and fills defaults.
func (c *Config) Validate() error {
	if len(c.Shards) == 0 {
		return fmt.Errorf("extract: no input shards")
	}
	if c.Cache == "" {
		return fmt.Errorf("extract: no cache directory")
	}
	if c.ModelConfig == "" {
		return fmt.Errorf("extract: no model config")
	}
	if c.Views < 1 || c.Views > 255 {
		return fmt.Errorf("extract: views %d: want 1..255", c.Views)
	}
	if c.BatchSize < 1 {
		return fmt.Errorf("extract: batch size %d: want ≥ 1", c.BatchSize)
	}
	if c.NumWorkers < 1 {
		c.NumWorkers = 1
	}
	if c.Worker < 0 || c.Worker >= c.NumWorkers {
		return fmt.Errorf("extract: worker %d of %d: want 0 ≤ worker < workers", c.Worker, c.NumWorkers)
	}
	if c.DType == "" {
		c.DType = store.Float16
	}
	if c.DType != store.Float16 && c.DType != store.Float32 {
		return fmt.Errorf("extract: dtype %q: want float16 or float32", c.DType)
	}
	if c.Threads <= 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
	if c.MaxRejectFraction < 0 || c.MaxRejectFraction > 1 {
		return fmt.Errorf("extract: max reject fraction %g: want 0..1", c.MaxRejectFraction)
	}
	if c.Split == "" {
		c.Split = "train"
	}
	switch c.Decode {
	case "":
		c.Decode = DecodeAuto
	case DecodeAuto, DecodeCPU, DecodeGPU:
	default:
		return fmt.Errorf("extract: decode %q: want cpu, gpu or auto", c.Decode)
	}
	return nil
}

// WorkerFromEnv returns the worker index and count an array job gives this
// process: SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT (minus
// SLURM_ARRAY_TASK_MIN when the array does not start at 0), or Kubernetes'
// JOB_COMPLETION_INDEX with LITCACHE_WORKERS (an Indexed Job's
// completions). ok is false when none is set.
func WorkerFromEnv(getenv func(string) string) (worker, workers int, ok bool, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	num := func(name string) (int, bool, error) {
		s := getenv(name)
		if s == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, true, fmt.Errorf("extract: $%s=%q is not an integer", name, s)
		}
		return n, true, nil
	}
	if id, set, err := num("SLURM_ARRAY_TASK_ID"); set || err != nil {
		if err != nil {
			return 0, 0, true, err
		}
		n, nset, err := num("SLURM_ARRAY_TASK_COUNT")
		if err != nil {
			return 0, 0, true, err
		}
		if !nset {
			return 0, 0, true, fmt.Errorf("extract: $SLURM_ARRAY_TASK_ID is set but $SLURM_ARRAY_TASK_COUNT is not")
		}
		lo, _, err := num("SLURM_ARRAY_TASK_MIN")
		if err != nil {
			return 0, 0, true, err
		}
		return id - lo, n, true, nil
	}
	if id, set, err := num("JOB_COMPLETION_INDEX"); set || err != nil {
		if err != nil {
			return 0, 0, true, err
		}
		n, nset, err := num("LITCACHE_WORKERS")
		if err != nil {
			return 0, 0, true, err
		}
		if !nset {
			return 0, 0, true, fmt.Errorf("extract: $JOB_COMPLETION_INDEX is set but $LITCACHE_WORKERS (the Job's completions) is not")
		}
		return id, n, true, nil
	}
	return 0, 1, false, nil
}
