package extract

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/wds"
	"github.com/litcache/litcache/store"
)

// The six ways issue 12 found to lose good samples or mislabel a cache, each
// driven through Run as a user's command would.

// seqShard writes n good samples with keys PREFIX_0000.. into path. cut > 0
// keeps only the first cut samples and drops the end-of-archive block (the
// file ends exactly at a sample boundary); after inserts extra members
// after the sample of that index.
func seqShard(t *testing.T, path, prefix string, n, cut int, after map[int][]member) {
	t.Helper()
	var ms []member
	keep := n
	if cut > 0 {
		keep = cut
	}
	for i := 0; i < keep; i++ {
		ms = append(ms, goodSample(t, fmt.Sprintf("%s_%04d", prefix, i), i%5, uint64(i+1))...)
		ms = append(ms, after[i]...)
	}
	writeShard(t, path, ms, 0)
	if cut > 0 {
		b, _ := os.ReadFile(path)
		if err := os.WriteFile(path, b[:len(b)-1024], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readRejects(t *testing.T, cache string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cache, "rejects.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Case 1: a shard cut right after sample 60 keeps samples 0..60, and the
// damage is recorded under the last good key, not "key":"".
func TestCase1CutAtSampleBoundary(t *testing.T) {
	dir := t.TempDir()
	shard := filepath.Join(dir, "cut-000000.tar")
	seqShard(t, shard, "c", 100, 61, nil)
	cfg := testConfig([]string{shard}, filepath.Join(dir, "cache"))
	cfg.Views = 1
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	rows := dump(t, cfg.Cache)
	if _, ok := rows["c_0060#0"]; !ok || len(rows) != 61 {
		t.Fatalf("%d rows cached (c_0060 there: %v), want the 61 samples before the cut", len(rows), ok)
	}
	rej := readRejects(t, cfg.Cache)
	if strings.Contains(rej, `"key":""`) || !strings.Contains(rej, "c_0060") {
		t.Fatalf("the damage is not named by the last good sample:\n%s", rej)
	}
}

// Case 2: bad member names are rejected one by one and the rest of the
// shard is read.
func TestCase2BadMemberKeepsShard(t *testing.T) {
	dir := t.TempDir()
	shard := filepath.Join(dir, "evil-000000.tar")
	seqShard(t, shard, "e", 40, 0, map[int][]member{
		20: {{"../evil.txt", []byte("x")}},
		30: {{"/abs/evil.jpg", []byte("x")}},
	})
	cfg := testConfig([]string{shard}, filepath.Join(dir, "cache"))
	cfg.Views = 1
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rows := dump(t, cfg.Cache); len(rows) != 40 {
		t.Fatalf("%d rows cached, want all 40 good samples (result %+v)", len(rows), res)
	}
	rej := readRejects(t, cfg.Cache)
	for _, want := range []string{`../evil.txt`, `/abs/evil.jpg`} {
		if !strings.Contains(rej, want) {
			t.Errorf("rejects.jsonl does not name %s:\n%s", want, rej)
		}
	}
}

// Case 2, second half: a shard unreadable part-way counts the samples it
// never gave (by sizes.json) against --max-reject-fraction.
func TestCase2UnreadSamplesCount(t *testing.T) {
	dir := t.TempDir()
	{
		sd := filepath.Join(dir, "sized")
		os.MkdirAll(sd, 0o755)
		shard := filepath.Join(sd, "000000.tar")
		seqShard(t, shard, "s", 100, 30, nil)
		if err := wds.WriteSizes(sd, map[string]int{"000000.tar": 100}); err != nil {
			t.Fatal(err)
		}
		c := testConfig([]string{shard}, filepath.Join(dir, "sized-cache"))
		c.Views = 1
		c.MaxRejectFraction = 0.5
		res, err := Run(context.Background(), c)
		if !errors.Is(err, ErrTooManyRejects) {
			t.Fatalf("a shard that gave 30 of its 100 samples passed --max-reject-fraction 0.5: %v (result %+v)", err, res)
		}
		if rows := dump(t, c.Cache); len(rows) != 30 {
			t.Fatalf("%d rows, want the 30 read", len(rows))
		}
	}
}

// Case 3: with manifest.json lost, another image tower is refused (the parts
// and markers say what made them) and the same tower finds its work done.
func TestCase3LostManifest(t *testing.T) {
	dir := t.TempDir()
	shards := makeShards(t, dir, 2, 4)
	cfg := testConfig(shards, filepath.Join(dir, "cache"))
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	want := dump(t, cfg.Cache)
	os.Remove(filepath.Join(cfg.Cache, "manifest.json"))
	other := cfg
	other.Seed = cfg.Seed + 1
	if res, err := Run(context.Background(), other); !errors.Is(err, store.ErrFingerprint) {
		t.Fatalf("another tower adopted the parts: err %v, result %+v", err, res)
	}
	res, err := Run(context.Background(), cfg)
	if err != nil || res.Skipped != 2 {
		t.Fatalf("the same tower: %+v, %v", res, err)
	}
	sameDump(t, "rebuilt", dump(t, cfg.Cache), want)
	if m, err := store.ReadManifest(cfg.Cache); err != nil || m.Rows != len(want) {
		t.Fatalf("rebuilt manifest %+v, %v", m, err)
	}
}

// Case 4: another shard under the same file name is not taken for the one
// already in; the error names both files.
func TestCase4SameNameOtherShard(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"shards", "other"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o755)
	}
	first := filepath.Join(dir, "shards", "000000.tar")
	second := filepath.Join(dir, "other", "000000.tar")
	seqShard(t, first, "a", 4, 0, nil)
	seqShard(t, second, "b", 5, 0, nil)
	cfg := testConfig([]string{first}, filepath.Join(dir, "cache"))
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Shards = []string{second}
	res, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), first) || !strings.Contains(err.Error(), second) {
		t.Fatalf("other/000000.tar: err %v (result %+v), want an error naming both files", err, res)
	}
	// The same shard moved elsewhere is still the same shard.
	moved := filepath.Join(dir, "moved.tar")
	b, _ := os.ReadFile(first)
	os.WriteFile(moved, b, 0o644)
	os.MkdirAll(filepath.Join(dir, "m"), 0o755)
	cfg.Shards = []string{filepath.Join(dir, "m", "000000.tar")}
	os.Rename(moved, cfg.Shards[0])
	if res, err := Run(context.Background(), cfg); err != nil || res.Skipped != 1 {
		t.Fatalf("the same bytes under another folder: %+v, %v", res, err)
	}
}

// Case 5: a part damaged after its marker was written is found by the next
// run and redone.
func TestCase5DamagedPartRedone(t *testing.T) {
	dir := t.TempDir()
	shards := makeShards(t, dir, 2, 4)
	cfg := testConfig(shards, filepath.Join(dir, "cache"))
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	want := dump(t, cfg.Cache)
	part := filepath.Join(cfg.Cache, "parts", store.PartName(cfg.Split, shards[1])+".arrow")
	st, err := os.Stat(part)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(part, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), cfg)
	if err != nil || res.Skipped != 1 {
		t.Fatalf("rerun over a truncated part: %+v, %v (want one shard redone)", res, err)
	}
	sameDump(t, "redone", dump(t, cfg.Cache), want)
	if rep, err := store.Verify(cfg.Cache, store.VerifyOptions{}); err != nil {
		t.Fatalf("verify after the redo: %v %v", err, rep.Problems)
	}
}

// Case 6: a start that fails (corrupt weights) leaves nothing that blocks a
// retry with good weights.
func TestCase6FailedStartDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	shards := makeShards(t, dir, 1, 3)
	bad := filepath.Join(dir, "corrupt.safetensors")
	os.WriteFile(bad, []byte("\x10\x00\x00\x00\x00\x00\x00\x00{not json at all"), 0o644)
	cfg := testConfig(shards, filepath.Join(dir, "cache"))
	cfg.Weights = bad
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("corrupt weights accepted")
	}
	cfg.Weights = ""
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("the retry with good weights: %v", err)
	}
}

// renamed is a backend under another name: the CPU's arithmetic, reported
// as another producer.
type renamed struct {
	backend.Backend
	name string
}

func (r renamed) Name() string { return r.name }

// Issue 10: a worker whose producer differs from the cache's is refused
// unless allowed; the producers are recorded and reported.
func TestMixedProducersRefused(t *testing.T) {
	dir := t.TempDir()
	shards := makeShards(t, dir, 2, 3)
	cfg := testConfig(shards[:1], filepath.Join(dir, "cache"))
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	gpu := cfg
	gpu.Shards = shards
	gpu.Backend = renamed{backend.NewCPU(), "cuda/bf16 (test double)"}
	_, err := Run(context.Background(), gpu)
	if !errors.Is(err, store.ErrMixedProducers) || !strings.Contains(err.Error(), "cuda/bf16") || !strings.Contains(err.Error(), "cpu/float32") {
		t.Fatalf("a bf16 worker into a float32 cache: %v", err)
	}
	gpu.AllowMixedProducers = true
	if res, err := Run(context.Background(), gpu); err != nil || res.Skipped != 1 {
		t.Fatalf("allowed: %+v %v", res, err)
	}
	m, _ := store.ReadManifest(cfg.Cache)
	if len(m.Producers) != 2 || m.Producer.Backend != "cpu" || m.Producers[1].Producer.Precision != "bf16" {
		t.Fatalf("manifest producers %+v (cache's %v)", m.Producers, m.Producer)
	}
	rep, err := store.Verify(cfg.Cache, store.VerifyOptions{})
	if err != nil || !strings.Contains(strings.Join(rep.Warnings, "\n"), "cuda/bf16") {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// Two identical runs at once make each shard once: whatever one holds, the
// other skips; a shard locked by someone else is left, and made on a rerun.
func TestShardLocks(t *testing.T) {
	dir := t.TempDir()
	shards := makeShards(t, dir, 6, 3)
	ref := filepath.Join(dir, "ref")
	if _, err := Run(context.Background(), testConfig(shards, ref)); err != nil {
		t.Fatal(err)
	}
	want := dump(t, ref)

	cache := filepath.Join(dir, "cache")
	var results [2]Result
	var errs [2]error
	done := make(chan int)
	for i := range results {
		go func() {
			c := testConfig(shards, cache)
			c.Hooks.AfterBatch = func(string, int) { time.Sleep(5 * time.Millisecond) } // let the runs interleave
			results[i], errs[i] = Run(context.Background(), c)
			done <- i
		}()
	}
	<-done
	<-done
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	samples := results[0].Samples + results[1].Samples
	if samples != 18 {
		t.Fatalf("the two runs read %d samples between them, the shards hold 18 (a shard made twice, or none): %+v", samples, results)
	}
	sameDump(t, "two at once", dump(t, cache), want)

	// A shard whose lock someone else holds is left to them.
	other := filepath.Join(dir, "held")
	c, err := store.Create(other, store.Manifest{Fingerprint: "x", Dim: 1, DType: store.Float32, Views: 1})
	if err != nil {
		t.Fatal(err)
	}
	lk, err := c.TryLock(store.PartName("train", shards[2]))
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	cfg := testConfig(shards, other)
	cfg.Log = &log
	res, err := Run(context.Background(), cfg)
	if err != nil || res.Busy != 1 || res.Samples != 15 {
		t.Fatalf("with shard 2 held: %+v %v", res, err)
	}
	if !strings.Contains(log.String(), "being made by pid") {
		t.Errorf("the skip does not say who holds the shard:\n%s", log.String())
	}
	lk.Unlock()
	if res, err := Run(context.Background(), cfg); err != nil || res.Skipped != 5 || res.Samples != 3 {
		t.Fatalf("rerun after the holder let go: %+v %v", res, err)
	}
	sameDump(t, "after the holder", dump(t, other), want)
}
