package extract

import (
	"context"
	"errors"
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
	return readClaimed(ctx, shards, nil, win, out, ends)
}

// readClaimed is readShards that first claims each shard (claims.claim:
// its lock, a last look at its marker, its identity). A shard another
// process holds or has finished is not read: its end, with no samples,
// says why (skip), and the writer makes no part of it.
func readClaimed(ctx context.Context, shards []shardJob, cl *claims, win *window, out chan<- *sample, ends chan<- shardEnd) error {
	defer close(ends)
	defer close(out)
	for si, sj := range shards {
		end, err := cl.claim(sj)
		if err != nil {
			return err
		}
		end.shard = si
		if end.skip == "" {
			if end.samples, end.err, err = readShard(ctx, si, sj.path, win, out); err != nil {
				return err
			}
		}
		select {
		case ends <- end:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// readShard sends shard si's samples and returns how many it read and, when
// the shard ended early, why (rerr; a *wds.DamageError when the archive
// broke). A member the reader left out (a *wds.MemberError: unsafe name,
// link, …) goes on as a sample to reject, and reading goes on. err is set
// only when ctx ended.
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
		var me *wds.MemberError
		if err != nil && !errors.As(err, &me) {
			return n, err, nil
		}
		if err := win.acquire(ctx); err != nil {
			return n, nil, err
		}
		smp := &sample{shard: si, seq: n, raw: s}
		if me != nil {
			smp = &sample{shard: si, seq: n, member: me, key: me.Key, reject: "member " + me.Name + ": " + me.Reason}
		}
		select {
		case out <- smp:
		case <-ctx.Done():
			win.release(1)
			return n, nil, ctx.Err()
		}
		n++
	}
}
