package extract

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/litcache/litcache/store"
)

// claims locks each shard's part just before the reader reads the shard and
// lets go once the writer has committed the part (or the run ends), so that
// two processes given the same shards (the same command started twice, a
// requeued job whose first run still goes on) share them instead of both
// making every part: each takes the shards the other does not hold. Locking
// as late as that, not all shards at the start, lets a second process start
// on the shards the first has not reached. The locks are the store's
// (flock, dropped by the kernel when a process dies, so a crash leaves no
// shard locked).
type claims struct {
	cache *store.Cache
	// verify makes the last look at a marker found meanwhile check the
	// part's whole sha256, not only its size and footer.
	verify bool
	log    io.Writer

	mu   sync.Mutex
	held map[string]*store.Lock // by part name
}

func newClaims(cache *store.Cache, verify bool, log io.Writer) *claims {
	return &claims{cache: cache, verify: verify, log: log, held: map[string]*store.Lock{}}
}

// claim locks sj's part and returns the start of its end: the shard's
// identity, or, when it is not to be read, why (skip). A part that another
// process finished since the plan is left alone when it passes its check,
// and made again when it does not. A nil claims reads every shard.
func (cl *claims) claim(sj shardJob) (shardEnd, error) {
	if cl == nil {
		return shardEnd{}, nil
	}
	lk, err := cl.cache.TryLock(sj.name)
	if errors.Is(err, store.ErrLocked) {
		return shardEnd{skip: err.Error()}, nil
	}
	if err != nil {
		return shardEnd{}, fmt.Errorf("extract: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			lk.Unlock()
		}
	}()
	mk, done, err := cl.cache.Done(sj.name)
	if err != nil {
		return shardEnd{}, fmt.Errorf("extract: %w", err)
	}
	if done {
		if _, err := store.CheckSource(mk, sj.path); err != nil {
			return shardEnd{}, fmt.Errorf("extract: shard %s: %w", sj.path, err)
		}
		if err := cl.cache.CheckPart(mk, cl.verify); err == nil {
			return shardEnd{skip: "finished by another process meanwhile"}, nil
		} else {
			fmt.Fprintf(cl.log, "extract: %v; making it again from %s\n", err, sj.path)
		}
		if err := cl.cache.Redo(sj.name); err != nil {
			return shardEnd{}, fmt.Errorf("extract: %w", err)
		}
	}
	// An unreadable file has no identity; the reader reports it as damage.
	src, _ := store.SourceOf(sj.path)
	cl.mu.Lock()
	cl.held[sj.name] = lk
	cl.mu.Unlock()
	keep = true
	return shardEnd{source: src}, nil
}

// release lets go of part name's lock (after its commit).
func (cl *claims) release(name string) {
	if cl == nil {
		return
	}
	cl.mu.Lock()
	lk := cl.held[name]
	delete(cl.held, name)
	cl.mu.Unlock()
	lk.Unlock()
}

// releaseAll lets go of every lock still held (a run that ended early).
func (cl *claims) releaseAll() {
	if cl == nil {
		return
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for name, lk := range cl.held {
		lk.Unlock()
		delete(cl.held, name)
	}
}
