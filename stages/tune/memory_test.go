package tune

import (
	"context"
	"math/rand/v2"
	"runtime/debug"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/tokenizer"
)

// TestStepMemoryFlat: after Reserve (as Run calls it), steps whose distinct
// caption count and trimmed context change every time allocate no tensor
// memory: the backend's own count of bytes ever allocated after step 10 is
// the count after step 2 (and after step 1). RSS would say the same only
// after a collection; the count says it exactly.
func TestStepMemoryFlat(t *testing.T) {
	fx := loadFixture(t)
	be := backend.NewCPU()
	tr := fx.trainer(t, be, TrainerOptions{Dedup: true, Trim: true})
	B, T, E := 16, fx.T, fx.E
	V := int32(fx.Cfg.Text.VocabSize)
	rng := rand.New(rand.NewPCG(21, 22))
	// 40 captions of 2..T tokens (start, words, end-of-text), as CaptionSet holds them.
	const K = 40
	caps := make([]int32, K*T)
	for k := 0; k < K; k++ {
		n := 2 + rng.IntN(T-1)
		row := caps[k*T : (k+1)*T]
		row[0] = V - 2
		for i := 1; i < n-1; i++ {
			row[i] = 1 + rng.Int32N(V-3)
		}
		row[n-1] = V - 1
	}
	tr.Reserve(B, NewCaptionSet(caps, T, nil).longest())
	img := make([]float32, B*E)
	ids := make([]int32, B*T)
	var after []int64
	var shapes [][2]int
	for s := 0; s < 10; s++ {
		pool := 2 + rng.IntN(K-2) // fewer distinct captions in some batches
		for b := 0; b < B; b++ {
			k := rng.IntN(pool)
			copy(ids[b*T:(b+1)*T], caps[k*T:(k+1)*T])
		}
		for i := range img {
			img[i] = float32(rng.NormFloat64())
		}
		st := tr.Step(img, ids, B, T)
		after = append(after, be.MemStats().Allocated)
		shapes = append(shapes, [2]int{st.Encoded, st.T})
	}
	t.Logf("encoded (U,T) per step: %v", shapes)
	distinct := map[[2]int]bool{}
	for _, s := range shapes {
		distinct[s] = true
	}
	if len(distinct) < 4 {
		t.Fatalf("only %d distinct step shapes: the test does not exercise shape changes", len(distinct))
	}
	if after[9] != after[1] || after[1] != after[0] {
		t.Errorf("tensor bytes allocated after each step: %v (want flat from step 1)", after)
	}
	if st := be.MemStats(); st.InUse+st.Pooled != st.Allocated {
		t.Errorf("memory stats %+v do not add up", st)
	}
}

// gcSource reads the collector's target each time the run reads a row.
type gcSource struct {
	*MemSource
	seen map[int]bool
}

func (s *gcSource) Row(i, v int, dst []float32) int32 {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	s.seen[p] = true
	return s.MemSource.Row(i, v, dst)
}

// TestRunGCPercent: while a run trains the collector's target is GCPercent
// (unless $GOGC is set), and the caller's comes back afterwards.
func TestRunGCPercent(t *testing.T) {
	w := newTestWorld(t)
	for _, env := range []string{"", "50"} {
		t.Setenv("GOGC", env)
		cfg := w.config(t.TempDir())
		cfg.Epochs, cfg.ValCache = 1, ""
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
		src := &gcSource{MemSource: w.train, seen: map[int]bool{}}
		in.Train = src
		prev := debug.SetGCPercent(77)
		if _, err := RunInputs(context.Background(), cfg, in); err != nil {
			t.Fatal(err)
		}
		after := debug.SetGCPercent(prev)
		want := GCPercent
		if env != "" {
			want = 77 // $GOGC set: the run leaves the target alone
		}
		if len(src.seen) != 1 || !src.seen[want] {
			t.Errorf("GOGC=%q: targets seen during the run %v, want %d", env, src.seen, want)
		}
		if after != 77 {
			t.Errorf("GOGC=%q: target after the run %d, want the caller's 77", env, after)
		}
	}
}
