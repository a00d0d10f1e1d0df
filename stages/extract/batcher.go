package extract

import (
	"context"
	"sync"
)

// batcher is the batch stage: it puts the decoded samples back into shard
// order and cuts each shard into batches for the tower. A batch is sent once
// its kept samples have batchRows views or more, and a shard's last batch
// (possibly empty) carries its end. Rejected samples ride in the batch being
// filled, so the writer sees every sample of a shard exactly once, in order.
// Batch boundaries depend only on the shard's content, never on timing: a
// resumed run embeds the same batches as an uninterrupted one.
type batcher struct {
	shards    int // how many shards the reader sends
	batchRows int
	views     int
	pool      *pixPool
	// hostPix packs each batch's float32 views into one buffer (the host
	// path); the GPU paths leave the views in their samples for the input
	// stage.
	hostPix bool

	cur     int              // the shard being batched
	next    int              // the next sample of cur, by seq
	pending map[pos]*sample  // decoded ahead of their turn, this shard's or later ones'
	ends    map[int]shardEnd // shard ends received, by shard
	b       *batch           // being filled
}

// pos is a sample's place in the input.
type pos struct{ shard, seq int }

// run reads decoded samples (in any order) and shard ends until every shard
// has gone out, or until its inputs close early (a stage upstream stopped;
// the pipeline reports the missing shard). It closes out.
func (bt *batcher) run(ctx context.Context, in <-chan *sample, ends <-chan shardEnd, out chan<- *batch) error {
	defer close(out)
	bt.pending, bt.ends = map[pos]*sample{}, map[int]shardEnd{}
	bt.b = &batch{shard: 0}
	for {
		if err := bt.drain(ctx, out); err != nil {
			return err
		}
		if bt.cur == bt.shards {
			return nil
		}
		if in == nil && ends == nil {
			return nil
		}
		select {
		case s, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			bt.pending[pos{s.shard, s.seq}] = s
		case e, ok := <-ends:
			if !ok {
				ends = nil
				continue
			}
			bt.ends[e.shard] = e
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// drain takes every sample that is next in order and sends the batches that
// fill up, closing each shard whose samples have all been taken.
func (bt *batcher) drain(ctx context.Context, out chan<- *batch) error {
	for bt.cur < bt.shards {
		if s, ok := bt.pending[pos{bt.cur, bt.next}]; ok {
			delete(bt.pending, pos{bt.cur, bt.next})
			bt.next++
			bt.b.samples = append(bt.b.samples, s)
			if s.reject == "" {
				bt.b.rows += bt.views
			}
			if bt.b.rows >= bt.batchRows {
				if err := bt.send(ctx, out); err != nil {
					return err
				}
			}
			continue
		}
		e, ok := bt.ends[bt.cur]
		if !ok || bt.next < e.samples {
			return nil
		}
		delete(bt.ends, bt.cur)
		bt.b.end = &e
		if err := bt.send(ctx, out); err != nil {
			return err
		}
		bt.cur, bt.next = bt.cur+1, 0
		bt.b.shard = bt.cur
	}
	return nil
}

// send packs the batch's views into one (rows,3,S,S) buffer and sends it.
func (bt *batcher) send(ctx context.Context, out chan<- *batch) error {
	b := bt.b
	bt.b = &batch{shard: b.shard}
	if b.rows > 0 && bt.hostPix {
		n := 0
		for _, s := range b.samples {
			for _, v := range s.views {
				n += len(v)
			}
		}
		b.pix = bt.pool.get(n)[:0]
		for _, s := range b.samples {
			for _, v := range s.views {
				b.pix = append(b.pix, v...)
			}
			s.views = nil // the batch holds them now
		}
	}
	select {
	case out <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pixPool recycles the batches' pixel buffers: the batcher fills one, the
// tower hands it back once the batch is embedded. A batch of ViT-L/14 views
// is 600 KB per row, so allocating each anew would keep the collector busy.
type pixPool struct{ p sync.Pool }

func newPixPool() *pixPool { return &pixPool{} }

// get returns a buffer of length n.
func (pp *pixPool) get(n int) []float32 {
	if b, ok := pp.p.Get().(*[]float32); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]float32, n)
}

// put gives a buffer back.
func (pp *pixPool) put(b []float32) {
	if cap(b) > 0 {
		pp.p.Put(&b)
	}
}
