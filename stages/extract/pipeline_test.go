package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/store"
)

// The pipeline tests run every stage with a fake decoder and a fake tower, so
// that ordering, back-pressure, failure and cancellation can be seen without
// a model. The fake decoder gives the sample makeShards keyed sSS_IIII
// (shard SS, sample IIII) the views [SS, IIII, view, 1], and the fake tower's embedding of a view is the view
// itself, so each stored row says which sample and view it came from.

const fakeDim = 4

// fakeDecode is the fake decoder: a sample whose .jpg is empty is rejected,
// as the real decoder does, and every other one gets views identity views.
func fakeDecode(views int) func(*sample) {
	return func(s *sample) {
		raw := s.raw
		s.raw = nil
		s.key = raw.Key
		if len(raw.Files["jpg"]) == 0 {
			s.reject = "image member is empty (0 bytes)"
			return
		}
		s.label, _ = labelOf(raw)
		s.caption = strings.TrimSpace(string(raw.Files["txt"]))
		var shard, seq int // from the key makeShards gives, not from the pipeline's own numbering
		if _, err := fmt.Sscanf(raw.Key, "s%02d_%04d", &shard, &seq); err != nil {
			panic(fmt.Sprintf("fakeDecode: key %q is not makeShards'", raw.Key))
		}
		for v := range views {
			s.views = append(s.views, []float32{float32(shard), float32(seq), float32(v), 1})
		}
	}
}

// fakeTower embeds a view as itself. encode, when set, runs first and may
// fail the call; calls records every call's rows (as [shard, seq, view]).
type fakeTower struct {
	encode func(call int, pix []float32, n int) error
	mu     sync.Mutex
	calls  [][][3]int
}

func (f *fakeTower) Dim() int { return fakeDim }

func (f *fakeTower) Encode(pix []float32, n int) ([]float32, error) {
	f.mu.Lock()
	call := len(f.calls)
	rows := make([][3]int, n)
	for i := range rows {
		rows[i] = [3]int{int(pix[i*fakeDim]), int(pix[i*fakeDim+1]), int(pix[i*fakeDim+2])}
	}
	f.calls = append(f.calls, rows)
	f.mu.Unlock()
	if f.encode != nil {
		if err := f.encode(call, pix, n); err != nil {
			return nil, err
		}
	}
	return slices.Clone(pix[:n*fakeDim]), nil
}

// testPipeline is a pipeline over shards into a new float32 cache in dir,
// with the fake decoder and tower; its window holds a whole run unless the
// test sets a smaller one.
func testPipeline(t *testing.T, dir string, shards []string, views, batchRows, threads int, tw Tower) *pipeline {
	t.Helper()
	cache, err := store.Create(dir, store.Manifest{Fingerprint: "fake", Model: "fake tower", Dim: fakeDim, DType: store.Float32, Views: views})
	if err != nil {
		t.Fatal(err)
	}
	var jobs []shardJob
	for _, sh := range shards {
		jobs = append(jobs, shardJob{sh, store.PartName("train", sh)})
	}
	return &pipeline{
		shards: jobs, threads: threads, batchRows: batchRows, views: views,
		window: 1000,
		decode: fakeDecode(views),
		tower:  tw,
		out:    partSink{cache: cache, split: "train", worker: 0, workers: 1},
		bar:    progress.New("test", 0, progress.Options{Quiet: true}),
		log:    io.Discard,
	}
}

// checkRows opens the cache and checks that part i holds shard i's kept
// samples in order, each with its views in order and each row the fake
// tower's embedding of that very view. skip(shard, seq) tells a rejected sample.
func checkRows(t *testing.T, dir string, shards, per, views int, skip func(shard, seq int) bool) {
	t.Helper()
	if _, err := store.Finalize(dir); err != nil {
		t.Fatal(err)
	}
	r, err := store.Open(dir, store.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.Parts()) != shards {
		t.Fatalf("%d parts, want %d", len(r.Parts()), shards)
	}
	for si, p := range r.Parts() {
		i := 0
		for seq := 0; seq < per; seq++ {
			if skip(si, seq) {
				continue
			}
			for v := 0; v < views; v++ {
				if i >= p.N {
					t.Fatalf("part %d: %d rows, want more", si, p.N)
				}
				want := []float32{float32(si), float32(seq), float32(v), 1}
				key := fmt.Sprintf("s%02d_%04d", si, seq)
				if got := p.Row(i, nil); p.Key(i) != key || int(p.Views()[i]) != v || !slices.Equal(got, want) {
					t.Fatalf("part %d row %d: key %s view %d emb %v, want %s view %d emb %v", si, i, p.Key(i), p.Views()[i], got, key, v, want)
				}
				i++
			}
		}
		if i != p.N {
			t.Fatalf("part %d: %d rows, want %d", si, p.N, i)
		}
	}
}

// shard1Sample3 is checkRows' skip function for makeShards' shards: it
// empties the image of sample 3 of shard 1.
func shard1Sample3(s, i int) bool { return s == 1 && i == 3 }

// settledGoroutines waits (up to 5 s) for the goroutine count to fall back to
// at most n, and fails the test with a stack dump if it does not: a stage
// left running after run returned.
func settledGoroutines(t *testing.T, n int) {
	t.Helper()
	for range 500 {
		if runtime.NumGoroutine() <= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Fatalf("%d goroutines still running, want ≤ %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
}

// TestPipelineOrderAcrossShards: decode finishes out of order, across shards
// too (shard 0's first sample waits for shard 2's first, and within a shard
// every third sample for its successor), yet each part holds its shard's
// samples in order, and no tower call mixes shards or exceeds the batch.
func TestPipelineOrderAcrossShards(t *testing.T) {
	dir := t.TempDir()
	const nShards, per, views, batchRows = 3, 7, 2, 4
	shards := makeShards(t, dir, nShards, per)
	tw := &fakeTower{}
	p := testPipeline(t, filepath.Join(dir, "cache"), shards, views, batchRows, 4, tw)

	decoded := map[pos]chan struct{}{}
	for s := range nShards {
		for i := range per {
			decoded[pos{s, i}] = make(chan struct{})
		}
	}
	var mu sync.Mutex
	var order []pos
	wait := func(q pos) {
		select {
		case <-decoded[q]:
		case <-time.After(10 * time.Second):
			t.Errorf("sample %v never decoded", q)
		}
	}
	inner := p.decode
	p.decode = func(s *sample) {
		me := pos{s.shard, s.seq}
		switch {
		case me == pos{0, 0}:
			wait(pos{2, 0})
		case s.seq%3 == 1 && s.seq+1 < per:
			wait(pos{s.shard, s.seq + 1})
		}
		inner(s)
		mu.Lock()
		order = append(order, me)
		mu.Unlock()
		close(decoded[me])
	}
	st, err := p.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if i, j := slices.Index(order, pos{0, 0}), slices.Index(order, pos{2, 0}); i < j {
		t.Fatalf("decode order %v: shard 0's first sample finished before shard 2's", order)
	}
	if st.committed != nShards || st.samples != nShards*per || st.rejects != 1 || st.rows != (nShards*per-1)*views {
		t.Fatalf("stats %+v", st)
	}
	checkRows(t, p.out.cache.Dir(), nShards, per, views, shard1Sample3)
	for c, rows := range tw.calls {
		if len(rows) > batchRows || len(rows) == 0 {
			t.Errorf("tower call %d: %d rows, batch is %d", c, len(rows), batchRows)
		}
		for _, r := range rows[1:] {
			if r[0] != rows[0][0] {
				t.Errorf("tower call %d mixes shards: %v", c, rows)
			}
		}
	}
}

// TestPipelineBackPressure: with the tower stuck on its first batch, the
// reader reads exactly as many samples as the window holds and then waits;
// once the tower moves again the run finishes with every row in place.
func TestPipelineBackPressure(t *testing.T) {
	dir := t.TempDir()
	const nShards, per, views, batchRows, win = 2, 20, 1, 2, 6
	shards := makeShards(t, dir, nShards, per)
	unblock := make(chan struct{})
	tw := &fakeTower{encode: func(call int, _ []float32, _ int) error {
		if call == 0 {
			<-unblock
		}
		return nil
	}}
	p := testPipeline(t, filepath.Join(dir, "cache"), shards, views, batchRows, 2, tw)
	p.window = win
	var decodedN atomic.Int64
	inner := p.decode
	p.decode = func(s *sample) { inner(s); decodedN.Add(1) }

	done := make(chan error, 1)
	var st stats
	go func() {
		var err error
		st, err = p.run(context.Background())
		done <- err
	}()
	// Wait for the window to fill, then give the reader time to overrun it
	// if nothing held it back (it would read all 40 samples in well under that).
	for i := 0; decodedN.Load() < win && i < 1000; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if n := decodedN.Load(); n != win || p.bar.Done() != 0 {
		t.Errorf("with the tower stuck: %d samples read, %d written; want %d read (the window), 0 written", n, p.bar.Done(), win)
	}
	close(unblock)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st.peakInFlight > win {
		t.Errorf("peak %d samples in flight, window %d", st.peakInFlight, win)
	}
	checkRows(t, p.out.cache.Dir(), nShards, per, views, shard1Sample3)

	t.Run("a window smaller than a batch is refused", func(t *testing.T) {
		p := testPipeline(t, filepath.Join(dir, "small"), shards, 1, 8, 1, &fakeTower{})
		p.window = 7
		if _, err := p.run(context.Background()); err == nil || !strings.Contains(err.Error(), "window 7") {
			t.Fatalf("err %v, want the window refused", err)
		}
	})
}

// TestPipelineTowerError: the tower fails on shard 1's first batch. The run
// returns that error once every stage has stopped; shard 0's part, finished
// before, is kept with its marker; nothing of shards 1 and 2 is left, not
// even a temp file; and a second run with a working tower completes the
// cache from there.
func TestPipelineTowerError(t *testing.T) {
	dir := t.TempDir()
	const nShards, per, views, batchRows = 3, 6, 1, 4
	shards := makeShards(t, dir, nShards, per)
	errBoom := errors.New("device lost")
	tw := &fakeTower{encode: func(call int, pix []float32, _ int) error {
		if pix[0] == 1 { // shard 1's first batch: shard 0 took calls 0 (4 rows) and 1 (2)
			return errBoom
		}
		return nil
	}}
	cache := filepath.Join(dir, "cache")
	before := runtime.NumGoroutine()
	p := testPipeline(t, cache, shards, views, batchRows, 3, tw)
	st, err := p.run(context.Background())
	p.bar.Finish()
	if !errors.Is(err, errBoom) {
		t.Fatalf("err %v, want the tower's", err)
	}
	settledGoroutines(t, before)
	if len(tw.calls) != 3 || st.committed != 1 {
		t.Fatalf("%d tower calls, %d shards committed; want 3 calls, 1 shard", len(tw.calls), st.committed)
	}
	for _, glob := range []string{"done/*", "parts/*"} {
		got, _ := filepath.Glob(filepath.Join(cache, glob))
		if len(got) != 1 || !strings.Contains(got[0], "train-000000") {
			t.Errorf("%s: %v, want shard 0's alone", glob, got)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "*", "*.tmp")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}

	// The resumed run redoes shards 1 and 2 only.
	c := testConfig(shards, cache)
	pl, err := planShards(c, p.out.cache)
	if err != nil || pl.skipped != 1 || len(pl.todo) != 2 {
		t.Fatalf("plan %+v %v", pl, err)
	}
	p2 := testPipeline(t, cache, shards, views, batchRows, 3, &fakeTower{})
	p2.shards = pl.todo
	if _, err := p2.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkRows(t, cache, nShards, per, views, shard1Sample3)
}

// TestPipelineCancel: cancelling the context mid-run (here from inside the
// tower's second call) stops every stage; the run returns context.Canceled,
// leaves no temp file and no part without its marker, and a new run
// finishes the cache.
func TestPipelineCancel(t *testing.T) {
	dir := t.TempDir()
	const nShards, per, views, batchRows = 3, 6, 2, 4
	shards := makeShards(t, dir, nShards, per)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tw := &fakeTower{encode: func(call int, _ []float32, _ int) error {
		if call == 1 {
			cancel()
		}
		return nil
	}}
	cache := filepath.Join(dir, "cache")
	before := runtime.NumGoroutine()
	p := testPipeline(t, cache, shards, views, batchRows, 3, tw)
	st, err := p.run(ctx)
	p.bar.Finish()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	settledGoroutines(t, before)
	if st.committed == nShards {
		t.Fatalf("all %d shards committed after the cancel", nShards)
	}
	parts, _ := filepath.Glob(filepath.Join(cache, "parts", "*"))
	markers, _ := filepath.Glob(filepath.Join(cache, "done", "*"))
	if len(parts) != st.committed || len(markers) != st.committed {
		t.Errorf("%d parts and %d markers for %d shards committed", len(parts), len(markers), st.committed)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "*", "*.tmp")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	pl, err := planShards(testConfig(shards, cache), p.out.cache)
	if err != nil {
		t.Fatal(err)
	}
	p2 := testPipeline(t, cache, shards, views, batchRows, 3, &fakeTower{})
	p2.shards = pl.todo
	if _, err := p2.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkRows(t, cache, nShards, per, views, shard1Sample3)
}

// TestPipelineEmptyAndBrokenShards: a shard that cannot be opened and one
// with no samples each still get a part and a marker (the unreadable one a
// reject saying why), so that a resumed run does not try them again.
func TestPipelineEmptyAndBrokenShards(t *testing.T) {
	dir := t.TempDir()
	good := makeShards(t, dir, 1, 3)[0]
	empty := filepath.Join(dir, "empty-000000.tar")
	writeShard(t, empty, nil, 0)
	broken := filepath.Join(dir, "broken-000000.tar")
	if err := os.WriteFile(broken, []byte("not a tar file at all, not even a header"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testPipeline(t, filepath.Join(dir, "cache"), []string{empty, good, broken}, 1, 2, 2, &fakeTower{})
	st, err := p.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.committed != 3 || st.rows != 3 || st.rejects != 1 || st.samples != 4 {
		t.Fatalf("stats %+v", st)
	}
	rej, _ := os.ReadFile(filepath.Join(p.out.cache.Dir(), "rejects", store.PartName("train", broken)+".jsonl"))
	if !strings.Contains(string(rej), "shard unreadable after 0 samples") {
		t.Fatalf("rejects of the broken shard: %q", rej)
	}
}
