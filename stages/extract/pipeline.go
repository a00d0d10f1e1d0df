package extract

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/wds"
	"github.com/litcache/litcache/store"
)

// The pipeline's stages, one file each, joined by bounded channels:
//
//	reader.go   shards → samples, in shard and sample order (one goroutine)
//	decode.go   samples → decoded views, on Threads goroutines (any order)
//	batcher.go  back into shard order; runs of kept views → batches (one goroutine)
//	gpu.go      (GPU paths) batches → the tower's input on the device, one
//	            batch ahead of the tower (one goroutine)
//	tower.go    batches → embeddings through a Tower (the caller's goroutine)
//	writer.go   embeddings → part rows; a shard's part committed at its end (one goroutine)
//
// The types below are all that passes between them.

// sample is one input sample on its way from the reader to the writer.
type sample struct {
	shard int         // index into the pipeline's shards
	seq   int         // position within its shard, from 0
	raw   *wds.Sample // the members; the decoder drops them
	// member is set (and raw nil) for a member the reader left out of every
	// sample: it rides the pipeline as a rejected sample of its own.
	member *wds.MemberError

	// Set by the decoder.
	key     string
	label   int32
	caption string
	reject  string // why the sample cannot be used; "" when it can
	// The views, in the form the run's decode mode gives (one is set on a
	// kept sample): views for the host tower, u8 for the GPU from the CPU,
	// gpu for the GPU to decode.
	views [][]float32 // one (3,S,S) float32 tensor per view
	u8    [][]byte    // one S×S×3 uint8 image per view (HWC, not normalised)
	gpu   *gpuImage   // the JPEG and its views' plans, decoded on the GPU
	// fallback says why the CPU decoded this image on the GPU decode path
	// ("PNG", "CMYK/YCCK JPEG", nvJPEG's refusal); "" when it did not.
	fallback string
}

// shardEnd tells the batcher how many samples a shard had: the reader sends
// it after the shard's last sample.
type shardEnd struct {
	shard   int
	samples int
	err     error // why reading stopped early (a cut or damaged shard); nil at a clean end
	// source is the shard's identity, read when the reader claimed it.
	source store.Source
	// skip, when not "", says why the shard was not read and no part is
	// made: another process holds it, or finished it meanwhile.
	skip string
}

// batch is a run of consecutive samples of one shard: what the tower embeds
// in one call and the writer appends in one go.
type batch struct {
	shard   int
	samples []*sample // in shard order, rejected ones included
	rows    int       // kept samples × views: the rows of pix and emb
	pix     []float32 // (rows,3,S,S), the kept samples' views in order; the tower hands it back
	// dev is the batch's views on the device (GPU paths: the input stage
	// makes it from the samples' u8 or gpu views; the tower frees it, or
	// devFree when the run stops before the tower takes it).
	dev     backend.Tensor
	devFree func(backend.Tensor)
	emb     []float32 // (rows,E), set by the tower
	end     *shardEnd // set on a shard's last batch: the writer commits the part after it
}

// dropDevice frees the batch's device tensor, which no stage will use.
func (b *batch) dropDevice() {
	if b.dev != nil && b.devFree != nil {
		b.devFree(b.dev)
	}
	b.dev = nil
}

// pipeline is one run over a list of shards.
type pipeline struct {
	shards  []shardJob
	threads int // decode goroutines
	// batchRows is the tower's batch in rows (views): a batch is sent once
	// its kept samples have at least this many views, or at a shard's end.
	batchRows int
	views     int
	// window bounds the samples between the reader and the writer (see
	// window); it must be at least the samples of one batch.
	window int
	decode func(*sample) // fills key, label, caption, views (u8, gpu) or reject
	// input makes each batch's device input on the GPU paths (gpu.go); nil
	// on the host path, where the batcher packs float32 views.
	input inputMaker
	tower Tower
	// normalize L2-normalises each embedding before it is stored.
	normalize bool
	out       partSink
	hooks     Hooks
	bar       *progress.Bar
	log       io.Writer
	// claims locks each shard's part before the reader opens it; nil (the
	// fake pipelines of the tests) reads every shard without locking.
	claims *claims
}

// partSink is where the writer puts a shard's rows: the cache.
type partSink struct {
	cache           *store.Cache
	split           string
	worker, workers int // recorded in each part's marker
}

// stats is what one run did.
type stats struct {
	samples, rows, rejects int
	committed              int // shards ended: part committed, or left to another process (busy)
	busy                   int // shards left to another process
	decode, tower, write   time.Duration
	input                  time.Duration // in the GPU paths' input stage
	peakInFlight           int           // most samples between reader and writer at once
	// fallbacks counts, by reason, the images the GPU decode path decoded
	// on the CPU.
	fallbacks map[string]int
}

// windowFor is the in-flight bound of a run: enough samples to keep every
// decoder busy with one queued behind it (4 per thread, as the channels
// between reader, decoders and batcher hold), plus the batch the tower is
// embedding and the one the batcher is filling, and on the GPU paths
// (device) the one the input stage is putting on the device meanwhile.
func windowFor(threads, batchRows, views int, device bool) int {
	n := 4*threads + 2*samplesPerBatch(batchRows, views)
	if device {
		n += samplesPerBatch(batchRows, views)
	}
	return n
}

// samplesPerBatch is how many kept samples fill a batch of batchRows views.
func samplesPerBatch(batchRows, views int) int { return (batchRows + views - 1) / views }

// run runs every stage until every shard's part is committed, the context
// ends or a stage fails. The first error stops the stages before the tower
// and the tower; the writer still writes what the tower had embedded, so a
// shard whose last batch was embedded keeps its part, and a part not yet
// committed is dropped (its shard has no marker: the next run redoes it).
// The tower runs on the calling goroutine; it could run on any: every cuda
// call makes the device's context current on its own thread.
func (p *pipeline) run(ctx context.Context) (stats, error) {
	var st stats
	if p.window < samplesPerBatch(p.batchRows, p.views) {
		// The batcher would wait for samples the reader may not read.
		return st, fmt.Errorf("extract: in-flight window %d is smaller than a batch (%d samples)", p.window, samplesPerBatch(p.batchRows, p.views))
	}
	base, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	g, gctx := errgroup.WithContext(base)

	win := newWindow(p.window)
	read := make(chan *sample, 2*p.threads)
	ends := make(chan shardEnd, len(p.shards))
	decoded := make(chan *sample, 2*p.threads)
	toTower := make(chan *batch, 1)
	toWriter := make(chan *batch, 1)
	pool := newPixPool()
	batches := toTower
	if p.input != nil {
		// GPU paths: batcher → input stage → tower.
		batches = make(chan *batch, 1)
		g.Go(func() error { return inputStage(gctx, p.input, batches, toTower, &st.input) })
	}

	defer p.claims.releaseAll() // what a failed run still held
	g.Go(func() error { return readClaimed(gctx, p.shards, p.claims, win, read, ends) })
	var decodeBusy atomic.Int64
	g.Go(func() error { return decodePool(gctx, p.threads, p.decode, read, decoded, &decodeBusy) })
	g.Go(func() error {
		b := batcher{shards: len(p.shards), batchRows: p.batchRows, views: p.views, pool: pool, hostPix: p.input == nil}
		return b.run(gctx, decoded, ends, batches)
	})
	w := &writer{sink: p.out, shards: p.shards, views: p.views, hooks: p.hooks, bar: p.bar, log: p.log, win: win, claims: p.claims}
	g.Go(func() error { return w.run(toWriter) })

	towerErr := towerStage(gctx, p.tower, p.normalize, pool, toTower, toWriter, &st.tower)
	if towerErr != nil {
		cancel(towerErr) // the errgroup's context is a child of base: every stage stops
	}
	for b := range toTower {
		b.dropDevice() // batches put on the device ahead of a tower that stopped
	}
	err := g.Wait()
	if err != nil || towerErr != nil {
		// The first failure, not the context.Canceled the others stopped with.
		err = context.Cause(gctx)
	}
	st.samples, st.rows, st.rejects, st.committed, st.write = w.samples, w.rows, w.rejects, w.committed, w.writeTime
	st.busy, st.fallbacks = w.busy, w.fallbacks
	st.decode = time.Duration(decodeBusy.Load())
	st.peakInFlight = win.peak()
	if err == nil && st.committed < len(p.shards) {
		// Every stage ended without an error but a shard is missing: a bug.
		err = fmt.Errorf("extract: pipeline ended before shard %s was complete", p.shards[st.committed].path)
	}
	return st, err
}

// window bounds the samples in flight between the reader and the writer: the
// reader takes a slot for each sample it reads and the writer gives it back
// once the sample's rows are added. Memory then stays flat even when one
// image decodes slowly and the rest run ahead into the reorder buffer.
type window struct {
	slots chan struct{}
	held  atomic.Int64
	max   atomic.Int64
}

func newWindow(n int) *window { return &window{slots: make(chan struct{}, n)} }

// acquire takes one slot, waiting for the writer to free one.
func (w *window) acquire(ctx context.Context) error {
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	n := w.held.Add(1)
	for {
		m := w.max.Load()
		if n <= m || w.max.CompareAndSwap(m, n) {
			return nil
		}
	}
}

// release gives back n slots.
func (w *window) release(n int) {
	w.held.Add(int64(-n))
	for range n {
		<-w.slots
	}
}

// peak is the most slots held at once.
func (w *window) peak() int { return int(w.max.Load()) }
