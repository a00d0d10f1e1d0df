package extract

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/wds"
	"github.com/litcache/litcache/store"
)

// writer is the write stage: it appends each embedded batch's rows (and its
// rejects) to the part of the batch's shard, and at the shard's end commits
// the part (parts/, rejects/, then the done/ marker: see store.PartWriter).
// It counts what it wrote; it is the only stage that touches the cache.
type writer struct {
	sink   partSink
	shards []shardJob
	views  int // rows per kept sample
	hooks  Hooks
	bar    *progress.Bar
	log    io.Writer
	win    *window // a written sample's slot is given back here
	claims *claims // each part's lock, let go after its commit

	pw        *store.PartWriter // the open part, of shard cur
	cur       int
	batchIdx  int // batches with rows written to the open part
	samples   int // samples taken this run (kept + rejected), the damage of a cut shard included
	rows      int
	rejects   int
	committed int // shards ended (committed, or left to another process), the first ones in order
	busy      int // shards left to another process
	writeTime time.Duration
	fallbacks map[string]int // GPU decode path: images decoded on the CPU, by reason
}

// run writes the batches from in until the tower stage closes it. It does
// not watch the context: whatever the tower embedded before a failure or a
// cancel is still written, so a shard whose last batch got through keeps its
// part, and the writer stops right after (the tower stops first). A part left
// open (its shard unfinished) is dropped: without a marker, the next run
// redoes the shard.
func (w *writer) run(in <-chan *batch) error {
	defer func() {
		if w.pw != nil {
			w.pw.Abort()
		}
	}()
	for b := range in {
		if err := w.write(b); err != nil {
			return err
		}
	}
	return nil
}

// write appends one batch, and commits its shard's part when it is the last.
func (w *writer) write(b *batch) error {
	if b.end != nil && b.end.skip != "" && w.pw == nil && len(b.samples) == 0 {
		fmt.Fprintf(w.log, "extract: %s: skipped: %s\n", w.shards[b.shard].path, b.end.skip)
		w.busy++
		w.committed++
		return nil
	}
	if w.pw == nil {
		pw, err := w.sink.cache.NewPart(w.shards[b.shard].name, w.sink.split, w.shards[b.shard].path)
		if err != nil {
			return err
		}
		w.pw, w.cur, w.batchIdx = pw, b.shard, 0
	}
	if b.shard != w.cur {
		return fmt.Errorf("extract: batch of shard %d while shard %d is open", b.shard, w.cur)
	}
	E := w.sink.cache.Manifest().Dim
	if len(b.emb) != b.rows*E {
		return fmt.Errorf("extract: batch of %d rows has %d embedding values, want %d", b.rows, len(b.emb), b.rows*E)
	}
	r := 0
	for _, s := range b.samples {
		w.samples++
		if s.fallback != "" {
			if w.fallbacks == nil {
				w.fallbacks = map[string]int{}
			}
			w.fallbacks[s.fallback]++
		}
		if s.member != nil {
			w.rejects++
			w.pw.RejectMember(s.member.Name, s.member.Key, s.member.Offset, s.member.Reason)
			continue
		}
		if s.reject != "" {
			w.rejects++
			w.pw.Reject(s.key, s.reject)
			continue
		}
		for v := 0; v < w.views; v++ {
			if err := w.pw.Add(s.key, s.label, v, s.caption, b.emb[r*E:(r+1)*E]); err != nil {
				return err
			}
			r++
		}
	}
	w.rows += r
	w.win.release(len(b.samples))
	w.bar.Add(int64(len(b.samples)))
	if b.rows > 0 {
		if w.hooks.AfterBatch != nil {
			w.hooks.AfterBatch(w.shards[w.cur].path, w.batchIdx)
		}
		w.batchIdx++
	}
	if b.end != nil {
		return w.commit(*b.end)
	}
	return nil
}

// commit writes the open part. A shard cut or damaged part-way keeps the
// samples read before the damage; the damage is one line of the part's
// rejects, and the samples the shard never gave (by its sizes.json or
// index, else estimated) count as rejected.
func (w *writer) commit(end shardEnd) error {
	sj := w.shards[w.cur]
	if end.err != nil {
		d := damageOf(sj.path, end.samples, end.err)
		w.pw.Damaged(d)
		w.samples += d.Lost
		w.rejects += d.Lost
		fmt.Fprintf(w.log, "extract: %v (kept the %d samples before; %d never read: %s)\n", end.err, end.samples, d.Lost, d.How)
	}
	w.pw.SetSource(end.source)
	t0 := time.Now()
	if _, err := w.pw.Commit(w.sink.worker, w.sink.workers, &w.hooks.Part); err != nil {
		return err
	}
	w.writeTime += time.Since(t0)
	w.pw = nil
	w.claims.release(sj.name)
	w.committed++
	return nil
}

// damageOf describes how a shard ended early after read samples.
func damageOf(path string, read int, err error) store.Damage {
	d := store.Damage{Read: read, Reason: fmt.Sprintf("shard unreadable after %d samples: %v", read, err)}
	var de *wds.DamageError
	if errors.As(err, &de) {
		d.Offset, d.After, d.Key = de.Offset, de.After, de.Key
		d.Reason = fmt.Sprintf("shard unreadable after %d samples, from byte %d: %v", read, de.Offset, de.Err)
	}
	if n, _, ok := wds.ExpectedSamples(path); ok {
		d.Expected = n
	}
	d.Lost, d.How = wds.EstimateLost(path, read, d.Offset)
	return d
}
