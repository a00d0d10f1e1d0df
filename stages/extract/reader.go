package extract

import (
	"context"
	"io"

	"github.com/litcache/litcache/internal/wds"
)

// readShards is the reader stage: it reads the shards one after another and
// sends their samples in order on out, each after taking a slot of win, and
// after each shard's last sample its end (with the sample count) on ends. A
// shard that cannot be opened, or that breaks part-way, ends early with the
// error in its shardEnd: the samples before the damage are kept and the
// writer records the damage as a reject. It closes both channels when done.
func readShards(ctx context.Context, shards []shardJob, win *window, out chan<- *sample, ends chan<- shardEnd) error {
	defer close(ends)
	defer close(out)
	for si, sj := range shards {
		n, rerr, err := readShard(ctx, si, sj.path, win, out)
		if err != nil {
			return err
		}
		select {
		case ends <- shardEnd{shard: si, samples: n, err: rerr}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// readShard sends shard si's samples and returns how many it read and, when
// the shard ended early, why (rerr). err is set only when ctx ended.
func readShard(ctx context.Context, si int, path string, win *window, out chan<- *sample) (n int, rerr, err error) {
	r, err := wds.NewReader(path)
	if err != nil {
		return 0, err, nil
	}
	defer r.Close()
	for {
		s, err := r.Next()
		if err == io.EOF {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
		if err := win.acquire(ctx); err != nil {
			return n, nil, err
		}
		select {
		case out <- &sample{shard: si, seq: n, raw: s}:
		case <-ctx.Done():
			win.release(1)
			return n, nil, ctx.Err()
		}
		n++
	}
}
