package tune

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/tokenizer"
)

// TestBlockOrder: a block order is a permutation fixed by (seed, epoch);
// each window is a contiguous run of the order holding exactly the images
// of its blocks; every block is in one window; epochs differ.
func TestBlockOrder(t *testing.T) {
	starts := []int{0, 5, 12, 20, 21, 30} // block sizes 5, 7, 8, 1, 9, 7
	const N, V, W = 37, 2, 2
	p0, v0, w0 := blockOrder(3, 0, N, V, starts, W)
	p0b, v0b, _ := blockOrder(3, 0, N, V, starts, W)
	p1, _, _ := blockOrder(3, 1, N, V, starts, W)
	if !slices.Equal(p0, p0b) || !slices.Equal(v0, v0b) || slices.Equal(p0, p1) {
		t.Fatal("block order is not fixed by (seed, epoch), or epochs 0 and 1 agree")
	}
	if s := slices.Sorted(slices.Values(p0)); !slices.Equal(s, seq(N)) {
		t.Fatalf("not a permutation: %v", p0)
	}
	if len(v0) != N {
		t.Fatalf("%d views for %d images", len(v0), N)
	}
	blockOf := func(i int) int { return sort.SearchInts(starts, i+1) - 1 }
	var all []int
	for k, w := range w0 {
		end := N
		if k+1 < len(w0) {
			end = w0[k+1].start
		}
		in := map[int]bool{}
		for _, b := range w.blocks {
			in[b] = true
		}
		all = append(all, w.blocks...)
		want := 0
		for _, b := range w.blocks {
			want += min(append(starts[b+1:], N)[0], N) - starts[b]
		}
		if end-w.start != want {
			t.Fatalf("window %d spans %d positions, its blocks hold %d images", k, end-w.start, want)
		}
		for _, i := range p0[w.start:end] {
			if !in[blockOf(i)] {
				t.Fatalf("window %d (blocks %v) holds image %d of block %d", k, w.blocks, i, blockOf(i))
			}
		}
		if len(w.blocks) > W {
			t.Fatalf("window %d has %d blocks", k, len(w.blocks))
		}
	}
	if s := slices.Sorted(slices.Values(all)); !slices.Equal(s, seq(len(starts))) {
		t.Fatalf("windows cover blocks %v", all)
	}
	// Shuffled within the window: its blocks' images interleave, rather
	// than following one another block by block.
	changes := 0
	first := p0[w0[0].start:w0[1].start]
	for i := 1; i < len(first); i++ {
		if blockOf(first[i]) != blockOf(first[i-1]) {
			changes++
		}
	}
	if changes < len(w0[0].blocks) {
		t.Errorf("the first window's %d images change block %d times: not shuffled within the window", len(first), changes)
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// blockSource gives a MemSource blocks of 8 images and records prefetches
// and reads.
type blockSource struct {
	*MemSource
	prefetched map[int]int // block → times prefetched
	reads      int
	late       int // rows read before their block's prefetch of this epoch
	perEpoch   int // rows read per epoch
}

func (s *blockSource) Blocks() []int {
	var b []int
	for i := 0; i < s.Len(); i += 8 {
		b = append(b, i)
	}
	return b
}

func (s *blockSource) Prefetch(blocks []int) {
	for _, b := range blocks {
		s.prefetched[b]++
	}
}

func (s *blockSource) Row(i, v int, dst []float32) int32 {
	if epoch := s.reads / s.perEpoch; s.prefetched[i/8] < epoch+1 {
		s.late++
	}
	s.reads++
	return s.MemSource.Row(i, v, dst)
}

// TestBlockShuffleRun: a block-shuffled run prefetches each block once per
// epoch before reading it, a run stopped mid-epoch resumes onto the
// uninterrupted run's weights, and a global run cannot be resumed as a
// block one.
func TestBlockShuffleRun(t *testing.T) {
	w := newTestWorld(t)
	run := func(cfg Config, src *blockSource) Result {
		t.Helper()
		in := w.inputs(t, cfg)
		in.Train = src
		r, err := RunInputs(t.Context(), cfg, in)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	newSrc := func(cfg Config) *blockSource {
		return &blockSource{MemSource: w.train, prefetched: map[int]int{}, perEpoch: w.train.Len() / cfg.BatchSize * cfg.BatchSize}
	}
	base := w.config(filepath.Join(w.dir, "block-full"))
	base.Epochs, base.Shuffle, base.ShuffleWindow, base.ValCache = 2, ShuffleBlock, 2, ""
	src := newSrc(base)
	ref := run(base, src)
	nb := len(src.Blocks())
	for b := 0; b < nb; b++ {
		if src.prefetched[b] != base.Epochs {
			t.Errorf("block %d prefetched %d times in %d epochs", b, src.prefetched[b], base.Epochs)
		}
	}
	if src.late != 0 || src.reads != ref.Steps*base.BatchSize {
		t.Errorf("%d of %d rows read before their block was prefetched", src.late, src.reads)
	}

	cfg := base
	cfg.Out, cfg.StopAfter = filepath.Join(w.dir, "block-stopped"), 3 // mid-epoch 0
	run(cfg, newSrc(cfg))
	cfg.StopAfter, cfg.Resume = 0, true
	run(cfg, newSrc(cfg))
	a, _ := os.ReadFile(filepath.Join(base.Out, "final", modelFile))
	b, _ := os.ReadFile(filepath.Join(cfg.Out, "final", modelFile))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("the resumed block-shuffled run ends elsewhere than the uninterrupted one")
	}

	g := w.config(filepath.Join(w.dir, "global"))
	g.StopAfter, g.ValCache = 2, ""
	run(g, newSrc(g))
	g.StopAfter, g.Resume, g.Shuffle = 0, true, ShuffleBlock
	if _, err := RunInputs(t.Context(), g, w.inputs(t, g)); err == nil || !strings.Contains(err.Error(), "settings differ") {
		t.Errorf("resuming a global run as a block one: %v", err)
	}
	bad := w.config(t.TempDir())
	bad.Shuffle = "local"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "--shuffle") {
		t.Errorf("bad shuffle: %v", err)
	}
}

// inputs builds in-memory inputs for cfg from the world's training images
// (no val).
func (w *testWorld) inputs(t *testing.T, cfg Config) Inputs {
	t.Helper()
	mcfg, err := clip.LoadConfig(cfg.Model)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(cfg.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	in, err := BuildInputs(cfg, mcfg, mcfg.Text.ContextLength, tok, w.classList, w.train, nil)
	if err != nil {
		t.Fatal(err)
	}
	return in
}
