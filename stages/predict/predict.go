package predict

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/stages/bundle"
)

// Result sums a run up.
type Result struct {
	Photos int // rows written
	Failed int // of those, photos that could not be read
	// Seconds is the wall time of the pipeline (the bundle's loading left
	// out); PhotosPerSecond is Photos/Seconds.
	Seconds         float64
	PhotosPerSecond float64
}

// Run opens the bundle and classifies every photo of cfg.Paths.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.Bundle == "" {
		return Result{}, fmt.Errorf("predict: no bundle (--bundle)")
	}
	b, err := bundle.Open(cfg.Bundle, cfg.Backend)
	if err != nil {
		return Result{}, fmt.Errorf("predict: %w", err)
	}
	defer b.Close()
	if err := b.CheckRank(cfg.Rank); err != nil {
		return Result{}, fmt.Errorf("predict: --rank: %w", err)
	}
	return RunWith(ctx, cfg, b, nameWidth(b.Classes(), cfg.Rank))
}

// RunWith classifies cfg.Paths with clf (cfg.Bundle is not read);
// nameWidth sizes the table's name column.
func RunWith(ctx context.Context, cfg Config, clf Classifier, nameWidth int) (Result, error) {
	var res Result
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	rw, err := newRowWriter(cfg.Format, out, nameWidth)
	if err != nil {
		return res, err
	}
	o := options{threads: cfg.Threads, batch: cfg.BatchSize, top: cfg.Top, rank: cfg.Rank, limits: cfg.Limits, maxFile: cfg.MaxFileBytes}
	if o.batch == 0 {
		o.batch = bundle.DefaultBatch(cfg.Backend)
	}
	if o.threads == 0 {
		o.threads = runtime.GOMAXPROCS(0)
	}
	if o.rank == "" {
		o.rank = "species"
	}
	if o.maxFile <= 0 {
		o.maxFile = DefaultConfig().MaxFileBytes
	}
	start := time.Now()
	photos := listPhotos(cfg.Paths)
	popt := cfg.Progress
	popt.Unit = "photo"
	bar := progress.New("predict", int64(len(photos)), popt)
	err = classify(ctx, clf, photos, o, func(r Row) error {
		res.Photos++
		if r.Err != nil {
			res.Failed++
		}
		bar.Add(1)
		return rw.Write(r)
	})
	bar.Finish()
	if cerr := rw.Close(); err == nil {
		err = cerr
	}
	res.Seconds = time.Since(start).Seconds()
	if res.Seconds > 0 {
		res.PhotosPerSecond = float64(res.Photos) / res.Seconds
	}
	if cfg.Log != nil {
		fmt.Fprintf(cfg.Log, "predict: %d photos (%d unreadable) in %.1f s, %.1f photos/s\n", res.Photos, res.Failed, res.Seconds, res.PhotosPerSecond)
	}
	if err != nil {
		return res, fmt.Errorf("predict: %w", err)
	}
	return res, nil
}
