package extract

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/litcache/litcache/internal/wds"
	"github.com/litcache/litcache/store"
)

// shardJob is one input shard this run embeds and the part it becomes.
type shardJob struct{ path, name string }

// plan is this worker's share of the shards.
type plan struct {
	todo          []shardJob // shards without a done/ marker, in input order
	shards        int        // this worker's shards, done or not
	skipped       int        // of those, already complete
	samplesBefore int        // samples of the skipped shards (from their markers)
	rejectsBefore int        // rejects of the skipped shards
}

// planShards takes shard i when i mod NumWorkers == Worker and leaves out
// the shards whose part is already complete. Part names must be unique over
// all workers' shards, so that no two workers can write the same part.
//
// A part counts as complete when its marker exists, the shard given now is
// the one it was made from (same size and content hash: another shard under
// the same file name is an error naming both), and the part passes its check
// against the marker (size and Arrow footer; the whole sha256 when
// cfg.VerifyParts). A part that fails is made again: it goes to todo, and
// the claim drops it before the shard is read.
func planShards(cfg Config, cache *store.Cache) (plan, error) {
	var p plan
	seen := map[string]string{}
	for i, sh := range cfg.Shards {
		name := store.PartName(cfg.Split, sh)
		if prev, dup := seen[name]; dup {
			return p, fmt.Errorf("extract: shards %s and %s map to the same part %s: give them distinct file names", prev, sh, name)
		}
		seen[name] = sh
		if i%cfg.NumWorkers != cfg.Worker {
			continue
		}
		p.shards++
		mk, done, err := cache.Done(name)
		if err != nil {
			return p, fmt.Errorf("extract: %w", err)
		}
		if done {
			if _, err := store.CheckSource(mk, sh); err != nil {
				return p, fmt.Errorf("extract: shard %s: %w", sh, err)
			}
			if err := cache.CheckPart(mk, cfg.VerifyParts); err == nil {
				p.skipped++
				p.samplesBefore += mk.Samples
				p.rejectsBefore += mk.Rejects
				continue
			}
		}
		if _, err := os.Stat(sh); err != nil {
			return p, fmt.Errorf("extract: shard %s: %w", sh, err)
		}
		p.todo = append(p.todo, shardJob{sh, name})
	}
	return p, nil
}

// sampleTotal is the progress bar's total from the sizes.json beside the
// shards, or 0 (unknown) when any shard is missing from it.
func sampleTotal(todo []shardJob) int {
	total := 0
	for _, sj := range todo {
		sizes, err := wds.ReadSizes(filepath.Dir(sj.path))
		if err != nil {
			return 0
		}
		n, ok := sizes[filepath.Base(sj.path)]
		if !ok {
			return 0
		}
		total += n
	}
	return total
}
