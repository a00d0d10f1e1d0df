package extract

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestBatcher feeds the batcher samples in a scrambled order, shard ends
// ahead of their samples, a rejected sample and a shard without samples, and
// reads back the batches: each shard's samples in order, a batch sent as
// soon as its kept views reach the batch size, the last one (empty when the
// shard's samples filled their batches exactly) carrying the end.
func TestBatcher(t *testing.T) {
	const views, batchRows = 2, 6 // 3 kept samples fill a batch
	perShard := []int{7, 0, 4}
	var in []*sample
	for sh, n := range perShard {
		for seq := range n {
			s := &sample{shard: sh, seq: seq, key: fmt.Sprintf("%d/%d", sh, seq)}
			if sh == 0 && seq == 2 {
				s.reject = "bad"
			} else {
				s.views = [][]float32{{float32(sh), float32(seq), 0}, {float32(sh), float32(seq), 1}}
			}
			in = append(in, s)
		}
	}
	// Scramble: later shards first, each shard back to front.
	samples := make(chan *sample, len(in))
	for i := len(in) - 1; i >= 0; i-- {
		samples <- in[i]
	}
	close(samples)
	ends := make(chan shardEnd, len(perShard))
	for sh := len(perShard) - 1; sh >= 0; sh-- {
		ends <- shardEnd{shard: sh, samples: perShard[sh]}
	}
	close(ends)
	out := make(chan *batch, 100)
	bt := batcher{shards: len(perShard), batchRows: batchRows, views: views, pool: newPixPool(), hostPix: true}
	if err := bt.run(context.Background(), samples, ends, out); err != nil {
		t.Fatal(err)
	}
	var got []string
	for b := range out {
		var keys []string
		for _, s := range b.samples {
			keys = append(keys, s.key)
		}
		line := fmt.Sprintf("shard %d rows %d [%s]", b.shard, b.rows, strings.Join(keys, " "))
		if b.end != nil {
			line += fmt.Sprintf(" end %d", b.end.samples)
		}
		got = append(got, line)
		// pix is the kept samples' views, in order.
		var want []float32
		for _, s := range b.samples {
			if s.reject == "" {
				var seq int
				fmt.Sscanf(s.key[strings.Index(s.key, "/")+1:], "%d", &seq)
				want = append(want, float32(b.shard), float32(seq), 0, float32(b.shard), float32(seq), 1)
			}
		}
		if fmt.Sprint(b.pix) != fmt.Sprint(want) && !(len(b.pix) == 0 && len(want) == 0) {
			t.Errorf("%s: pix %v, want %v", line, b.pix, want)
		}
	}
	want := []string{
		"shard 0 rows 6 [0/0 0/1 0/2 0/3]", // 0/2 rejected: rides along, adds no rows
		"shard 0 rows 6 [0/4 0/5 0/6]",     // full before the end was seen
		"shard 0 rows 0 [] end 7",
		"shard 1 rows 0 [] end 0",
		"shard 2 rows 6 [2/0 2/1 2/2]",
		"shard 2 rows 2 [2/3] end 4",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("batches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestBatcherStopsOnCancel: a batcher waiting for a sample returns the
// context's error and closes its output.
func TestBatcherStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := make(chan *batch)
	bt := batcher{shards: 1, batchRows: 1, views: 1, pool: newPixPool(), hostPix: true}
	err := bt.run(ctx, make(chan *sample), make(chan shardEnd), out)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if _, open := <-out; open {
		t.Fatal("output not closed")
	}
}
