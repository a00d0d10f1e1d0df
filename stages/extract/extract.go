package extract

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/store"
)

// ErrTooManyRejects: more samples were rejected than Config.MaxRejectFraction allows.
var ErrTooManyRejects = errors.New("too many rejected samples")

// Result sums up a run.
type Result struct {
	Fingerprint string
	Shards      int // this worker's shards
	Skipped     int // of those, already complete
	Samples     int // samples read this run (kept + rejected), plus those damaged shards never gave
	Rows        int // rows written this run (kept × views)
	Rejects     int // samples rejected this run
	Busy        int // of Shards, left to another process that held or finished them meanwhile
	// RejectFraction is rejects/samples over all of this worker's shards
	// (including those finished by an earlier run).
	RejectFraction float64
	// Seconds per phase. Decode is summed over the decode goroutines (busy
	// time, decode + preprocess); Input the GPU paths' input stage (filling
	// the pinned slots, or nvJPEG decoding and queuing the resizes), which
	// overlaps the tower; Tower is the wall time inside the image tower;
	// Write the wall time committing parts; Pipeline the wall time from the
	// first sample read to the last part committed; Wall the whole run
	// (opening the cache and building the tower included).
	DecodeSeconds, InputSeconds, TowerSeconds, WriteSeconds, PipelineSeconds, WallSeconds float64
	// CPUDecoded counts the images the GPU decode path decoded on the CPU
	// (PNG, CMYK JPEGs, those nvJPEG refused), by reason in CPUDecodeReasons.
	CPUDecoded       int
	CPUDecodeReasons map[string]int
	// ImagesPerSecond is samples / wall time.
	ImagesPerSecond float64
}

// Run extracts this worker's shards into cfg.Cache: it opens the cache,
// leaves out the shards already done, loads the tower and runs the pipeline
// (pipeline.go) over the rest.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	spec := towerSpec(cfg)
	tcfg, err := tower.Resolve(spec.Model)
	if err != nil {
		return res, fmt.Errorf("extract: model %q: %w", cfg.ModelConfig, err)
	}
	desc, err := tcfg.Describe(spec.Weights, spec.Pool) // refuses a pooling the family lacks
	if err != nil {
		return res, fmt.Errorf("extract: %w", err)
	}
	dim, _ := tcfg.Dim(spec.Pool)
	if res.Fingerprint, err = tcfg.Fingerprint(spec.Weights, spec.Pool); err != nil {
		return res, fmt.Errorf("extract: %w", err)
	}
	pre := tcfg.Preprocessor()
	source, err := towerSource(tcfg, spec)
	if err != nil {
		return res, err
	}
	if cfg.Backend == nil {
		cfg.Backend = backend.NewCPU()
	}
	dc, err := chooseDecode(cfg.Decode, cfg.Backend, pre)
	if err != nil {
		return res, err
	}
	if dc.jpeg != nil {
		defer dc.jpeg.Close()
	}
	cache, err := store.CreateWith(cfg.Cache, store.Manifest{
		Fingerprint: res.Fingerprint, Model: desc, Tower: source,
		Dim: dim, DType: cfg.DType, Views: cfg.Views, Normalized: cfg.Normalize,
		Producer: producerOf(cfg.Backend, dc),
	}, store.CreateOptions{AllowMixedProducers: cfg.AllowMixedProducers})
	if err != nil {
		return res, fmt.Errorf("extract: cache %s: %w", cfg.Cache, err)
	}
	pl, err := planShards(cfg, cache)
	if err != nil {
		return res, err
	}
	res.Shards, res.Skipped = pl.shards, pl.skipped
	if len(pl.todo) == 0 {
		fmt.Fprintf(cfg.Log, "extract: worker %d/%d: all %d shards already in %s\n", cfg.Worker, cfg.NumWorkers, res.Shards, cfg.Cache)
		res.RejectFraction = fraction(pl.rejectsBefore, pl.samplesBefore)
		if _, err := store.Finalize(cfg.Cache); err != nil {
			return res, fmt.Errorf("extract: %w", err)
		}
		return res, checkRejects(cfg, res)
	}
	cl := newClaims(cache, cfg.VerifyParts, cfg.Log)

	tw, err := loadTower(cfg, tcfg, spec, res.Fingerprint)
	if err != nil {
		return res, err
	}
	defer tw.t.Free()
	fmt.Fprintln(cfg.Log, "extract: "+dc.describe())
	input, closeInput, err := newInput(dc, cfg, pre)
	if err != nil {
		return res, fmt.Errorf("extract: %w", err)
	}
	defer closeInput()
	popt := cfg.Progress
	if popt.Unit == "" {
		popt.Unit = "img"
	}
	bar := progress.New(fmt.Sprintf("extract %s [%d/%d]", cfg.Split, cfg.Worker, cfg.NumWorkers), int64(sampleTotal(pl.todo)), popt)
	defer bar.Finish()

	p := &pipeline{
		shards: pl.todo, threads: cfg.Threads, batchRows: cfg.BatchSize, views: cfg.Views,
		window:    windowFor(cfg.Threads, cfg.BatchSize, cfg.Views, input != nil),
		decode:    decoder{pre: pre, views: cfg.Views, out: dc.mode}.decode,
		input:     input,
		tower:     tw,
		normalize: cfg.Normalize,
		out:       partSink{cache: cache, split: cfg.Split, worker: cfg.Worker, workers: cfg.NumWorkers},
		hooks:     cfg.Hooks, bar: bar, log: cfg.Log, claims: cl,
	}
	t0 := time.Now()
	st, err := p.run(ctx)
	res.PipelineSeconds = time.Since(t0).Seconds()
	res.Samples, res.Rows, res.Rejects, res.Busy = st.samples, st.rows, st.rejects, st.busy
	if err != nil {
		return res, fmt.Errorf("extract: %w", err)
	}
	bar.Finish()

	res.DecodeSeconds, res.TowerSeconds, res.WriteSeconds = st.decode.Seconds(), st.tower.Seconds(), st.write.Seconds()
	res.InputSeconds = st.input.Seconds()
	res.CPUDecodeReasons = st.fallbacks
	for _, n := range st.fallbacks {
		res.CPUDecoded += n
	}
	res.WallSeconds = time.Since(start).Seconds()
	if res.WallSeconds > 0 {
		res.ImagesPerSecond = float64(res.Samples) / res.WallSeconds
	}
	res.RejectFraction = fraction(pl.rejectsBefore+res.Rejects, pl.samplesBefore+res.Samples)
	// A run whose every shard another process held has committed nothing:
	// there may be no cache to finalize yet (that process will).
	if _, err := store.Finalize(cfg.Cache); err != nil && !(errors.Is(err, store.ErrNotCache) && res.Busy > 0) {
		return res, fmt.Errorf("extract: %w", err)
	}
	busy := ""
	if res.Busy > 0 {
		busy = fmt.Sprintf(", %d left to another process", res.Busy)
	}
	fmt.Fprintf(cfg.Log, "extract: worker %d/%d: %d shards (%d already done%s), %d samples, %d rejected, %.1f img/s (decode %.1fs busy, tower %.1fs)\n",
		cfg.Worker, cfg.NumWorkers, res.Shards, res.Skipped, busy, res.Samples, res.Rejects, res.ImagesPerSecond, res.DecodeSeconds, res.TowerSeconds)
	if dc.mode == decodeNVJPEG {
		fmt.Fprintf(cfg.Log, "extract: %d of %d images decoded on the CPU instead of nvJPEG%s\n", res.CPUDecoded, res.Samples, reasonList(res.CPUDecodeReasons))
	}
	return res, checkRejects(cfg, res)
}

// loadTower builds the image tower of spec on cfg.Backend (the CPU when
// nil), from its weights file or randomly initialised from random:SEED.
// fp is the fingerprint Run already computed: hashing the weights again would
// read the whole file a second time (1.7 GB for ViT-L/14).
func loadTower(cfg Config, tcfg tower.Config, spec tower.Spec, fp string) (registryTower, error) {
	be := cfg.Backend
	if be == nil {
		be = backend.NewCPU()
	}
	t, err := tower.LoadWithFingerprint(be, tcfg, spec.Weights, spec.Pool, fp)
	if err != nil {
		return registryTower{}, fmt.Errorf("extract: %w", err)
	}
	return registryTower{t, be}, nil
}

// newInput makes the GPU paths' input stage for dc (nil on the host path)
// and the function that releases it. A batch holds at most BatchSize+Views-1
// rows (the batcher sends once a batch reaches BatchSize).
func newInput(dc decodeChoice, cfg Config, pre imageproc.Preprocessor) (inputMaker, func(), error) {
	gpu, _ := cfg.Backend.(*cuda.Backend)
	maxRows := cfg.BatchSize + cfg.Views - 1
	switch dc.mode {
	case decodeUpload:
		u, err := gpu.NewImageUploader(maxRows, pre.Size, pre.NormalizeTable())
		if err != nil {
			return nil, nil, err
		}
		return uploadInput{u: u, release: gpu.Free}, func() { u.Close() }, nil
	case decodeNVJPEG:
		ib, err := gpu.NewImageBatch(pre, maxRows)
		if err != nil {
			return nil, nil, err
		}
		cpu := decoder{pre: pre, views: cfg.Views, out: decodeUpload}
		return nvjpegInput{d: dc.jpeg, ib: ib, be: gpu, cpu: cpu}, func() { ib.Close() }, nil
	}
	return nil, func() {}, nil
}

// reasonList is " (PNG 2, CMYK/YCCK JPEG 1)", by count then name; "" when empty.
func reasonList(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func fraction(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func checkRejects(cfg Config, res Result) error {
	if res.RejectFraction > cfg.MaxRejectFraction {
		return fmt.Errorf("extract: %.4f of the samples were rejected (limit %.4f, --max-reject-fraction); see %s: %w",
			res.RejectFraction, cfg.MaxRejectFraction, filepath.Join(cfg.Cache, "rejects.jsonl"), ErrTooManyRejects)
	}
	return nil
}
