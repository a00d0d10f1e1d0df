package littest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
)

// smallRun is a random text tower with a resident table and captions of
// many lengths, for the tests of shapes, memory and graphs.
type smallRun struct {
	cfg     clip.Config
	ps      []cuda.LiTParam
	rows    *cuda.DeviceRows
	caps    *cuda.DeviceCaptions
	capOf   []int32 // each image's caption
	lens    []int   // each caption's length
	N, B, K int
}

func newSmallRun(t *testing.T, be *cuda.Backend, B int) *smallRun {
	t.Helper()
	cpu := backend.NewCPU()
	r := &smallRun{N: 64, B: B, K: 12}
	r.cfg = clip.Config{EmbedDim: 32, QuickGELU: true, Text: clip.TextConfig{ContextLength: 32, VocabSize: 512,
		Width: 64, Heads: 4, Layers: 2, MLPRatio: 4},
		Vision: clip.VisionConfig{ImageSize: 32, PatchSize: 8, Width: 64, Layers: 1, HeadWidth: 16, MLPRatio: 4}}
	text := clip.NewRandomTextTower(cpu, r.cfg, 9)
	defer text.Free()
	r.ps = Params(t, text, 2.6)
	rng := rand.New(rand.NewPCG(1, 2))
	T := r.cfg.Text.ContextLength
	ids := make([]int32, r.K*T)
	for k := 0; k < r.K; k++ {
		n := 2 + k*(T-3)/(r.K-1) // lengths spread over every bucket
		ids[k*T] = 510
		for i := 1; i < n; i++ {
			ids[k*T+i] = int32(rng.IntN(510))
		}
		ids[k*T+n] = 511
		r.lens = append(r.lens, n+1)
	}
	var err error
	if r.caps, err = be.NewDeviceCaptions(ids, r.K, T, text.PoolPositions(ids, r.K, T)); err != nil {
		t.Fatal(err)
	}
	if r.rows, err = be.NewDeviceRows(r.N, r.cfg.EmbedDim, false); err != nil {
		t.Fatal(err)
	}
	feat := make([]float32, r.N*r.cfg.EmbedDim)
	for i := range feat {
		feat[i] = float32(rng.NormFloat64())
	}
	if err := r.rows.UploadF32(0, feat); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < r.N; i++ {
		r.capOf = append(r.capOf, int32(i%r.K))
	}
	return r
}

func (r *smallRun) free() {
	r.rows.Free()
	r.caps.Free()
}

// batch s (0..10): images of the first 2+s captions, whose lengths grow
// with k, so that the caption count and the bucketed context grow step by
// step and the largest shape comes last.
func (r *smallRun) batch(s int) cuda.LiTBatch {
	rng := rand.New(rand.NewPCG(uint64(s), 3))
	kmax := min(2+s, r.K) // captions 0..kmax-1
	var imgs []int
	for i := 0; i < r.N; i++ {
		if int(r.capOf[i]) < kmax {
			imgs = append(imgs, i)
		}
	}
	idx, capOf := make([]int32, r.B), make([]int32, r.B)
	for b := range idx {
		i := imgs[rng.IntN(len(imgs))]
		idx[b], capOf[b] = int32(i), r.capOf[i]
	}
	bt := r.caps.PlanBatch(idx, capOf, true, true)
	bt.LR = 1e-3
	return bt
}

func (r *smallRun) trainer(t *testing.T, be *cuda.Backend, o cuda.LiTOptions) *cuda.LiT {
	t.Helper()
	o.Batch, o.Beta1, o.Beta2, o.Eps, o.WeightDecay = r.B, 0.9, 0.98, 1e-6, 0.2
	lit, err := cuda.NewLiT(be, Model(r.cfg), r.ps, o)
	if err != nil {
		t.Fatal(err)
	}
	return lit
}

// MemoryStable trains 10 steps whose caption count and context change
// from step to step (three or more shapes) and checks that the device
// memory held after step 10 is what it was after step 2, and the high-water
// mark too: the arena is reserved for the largest step before the first,
// and no step allocates (issue 11's memory target).
func MemoryStable(t *testing.T, be *cuda.Backend) {
	r := newSmallRun(t, be, 32)
	defer r.free()
	lit := r.trainer(t, be, cuda.LiTOptions{})
	defer lit.Free()
	dv := be.Device()
	shapes := map[[2]int]bool{}
	var after2 cuda.MemStats
	for s := 1; s <= 10; s++ {
		bt := r.batch(s)
		shapes[[2]int{len(bt.Caps), bt.T}] = true
		if _, err := lit.Step(r.rows, r.caps, bt); err != nil {
			t.Fatalf("step %d: %v", s, err)
		}
		if s == 2 {
			after2 = dv.MemStats()
		}
	}
	after10 := dv.MemStats()
	t.Logf("%d step shapes %v; device memory after step 2 %d bytes (peak %d), after step 10 %d (peak %d)",
		len(shapes), shapes, after2.Allocated, after2.Peak, after10.Allocated, after10.Peak)
	if len(shapes) < 3 {
		t.Errorf("the steps had %d shapes; the test needs several", len(shapes))
	}
	if after10 != after2 {
		t.Errorf("device memory after step 10 %+v differs from after step 2 %+v", after10, after2)
	}
}

// GraphsMatch trains the same steps (several shapes, some repeated) with
// CUDA graphs and without, from the same weights, and compares each step's
// loss and the final weights: tol 0 asks for bit-identical results (the
// emulator replays the recorded work exactly); a GPU's atomics may add in
// another order. It returns the worst relative difference.
func GraphsMatch(t *testing.T, be *cuda.Backend, tol float64) float64 {
	r := newSmallRun(t, be, 32)
	defer r.free()
	var losses [2][]float64
	var weights [2][]cuda.LiTParam
	var shapes int
	for i, graphs := range []bool{false, true} {
		lit := r.trainer(t, be, cuda.LiTOptions{Graphs: graphs})
		seen := map[[2]int]bool{}
		for s := 1; s <= 8; s++ {
			bt := r.batch(s % 4) // each shape twice: capture, then replay
			seen[[2]int{len(bt.Caps), bt.T}] = true
			st, err := lit.Step(r.rows, r.caps, bt)
			if err != nil {
				t.Fatalf("graphs %v, step %d: %v", graphs, s, err)
			}
			losses[i] = append(losses[i], st.Loss)
		}
		shapes = len(seen)
		if graphs && lit.Graphs() != len(seen) {
			t.Errorf("%d graphs captured for %d step shapes", lit.Graphs(), len(seen))
		}
		var err error
		if weights[i], err = lit.Params(); err != nil {
			t.Fatal(err)
		}
		lit.Free()
	}
	worst := 0.0
	for s := range losses[0] {
		worst = max(worst, relDiff(losses[1][s], losses[0][s]))
	}
	for i := range weights[0] {
		worst = max(worst, RelL2(weights[1][i].Data, weights[0][i].Data))
	}
	t.Logf("CUDA graphs against direct launches over %d steps of %d shapes: relative difference %.3g (bound %g)", len(losses[0]), shapes, worst, tol)
	if !(worst <= tol) {
		t.Errorf("CUDA graphs change the result by %.3g relative (bound %g)", worst, tol)
	}
	return worst
}

var reAlloc = regexp.MustCompile(`cuMemAlloc\((\d+) bytes\)`)

// OutOfMemory asks for a batch whose B×B loss buffers the device cannot
// hold and checks the error: it names what the memory was for and the size
// asked for, and carries CUDA_ERROR_OUT_OF_MEMORY (issue 11: a failed step
// names the op and the size).
func OutOfMemory(t *testing.T, be *cuda.Backend, batch int) {
	r := newSmallRun(t, be, batch)
	defer r.free()
	_, err := cuda.NewLiT(be, Model(r.cfg), r.ps, cuda.LiTOptions{Batch: batch, Beta1: 0.9, Beta2: 0.98, Eps: 1e-6})
	checkOOM(t, err, fmt.Sprintf("LiT loss buffers for a batch of %d", batch))
}

func checkOOM(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	t.Logf("error: %v", err)
	var oe *cuda.OpError
	var ce *cuda.Error
	if !errors.As(err, &oe) || !errors.As(err, &ce) || ce.Name != "CUDA_ERROR_OUT_OF_MEMORY" {
		t.Errorf("%q is not an OpError carrying CUDA_ERROR_OUT_OF_MEMORY", err)
	}
	if !strings.Contains(err.Error(), what) {
		t.Errorf("%q does not say %q", err, what)
	}
	if !reAlloc.MatchString(err.Error()) {
		t.Errorf("%q does not name the size asked for", err)
	}
}

// GrowthOutOfMemory: a trainer reserved for short contexts meets a longer
// step when the device has no room for the larger arena (limit caps the
// device memory at so many bytes beyond, or short of, what is held now;
// unlimit lifts the cap). The step fails
// with an error naming the activations' shape and size; nothing of it ran,
// so the weights are the last step's, and a step that fits still runs.
func GrowthOutOfMemory(t *testing.T, be *cuda.Backend, limit func(extra int64), unlimit func()) {
	r := newSmallRun(t, be, 32)
	defer r.free()
	lit := r.trainer(t, be, cuda.LiTOptions{MaxTokens: 8})
	defer lit.Free()
	// a batch of captions of at most 8 tokens, and one of the longest caption
	var sIdx, sCap, lIdx, lCap []int32
	for i := 0; len(sIdx) < r.B || len(lIdx) < r.B; i++ {
		k := r.capOf[i%r.N]
		if r.lens[k] <= 8 && len(sIdx) < r.B {
			sIdx, sCap = append(sIdx, int32(i%r.N)), append(sCap, k)
		}
		if k == int32(r.K-1) && len(lIdx) < r.B {
			lIdx, lCap = append(lIdx, int32(i%r.N)), append(lCap, k)
		}
	}
	short := r.caps.PlanBatch(sIdx, sCap, true, true)
	long := r.caps.PlanBatch(lIdx, lCap, false, true) // every row encoded: 32 captions × 32 tokens
	short.LR, long.LR = 1e-3, 1e-3
	if _, err := lit.Step(r.rows, r.caps, short); err != nil {
		t.Fatal(err)
	}
	before, err := lit.Params()
	if err != nil {
		t.Fatal(err)
	}
	steps := lit.Steps()
	// room for half the larger arena once the old one is freed
	limit(int64(lit.ArenaBytes(len(long.Caps), long.T))/2 - int64(lit.ArenaBytes(r.B, 8)))
	err = lit.Launch(r.rows, r.caps, long)
	unlimit()
	checkOOM(t, err, fmt.Sprintf("LiT activations for %d captions × %d tokens", len(long.Caps), long.T))
	after, perr := lit.Params()
	if perr != nil {
		t.Fatal(perr)
	}
	for i := range before {
		if d := RelL2(after[i].Data, before[i].Data); d != 0 {
			t.Errorf("%s changed by %.3g after the failed step", before[i].Name, d)
		}
	}
	if lit.Steps() != steps {
		t.Errorf("the failed step counted: %d steps, was %d", lit.Steps(), steps)
	}
	if _, err := lit.Step(r.rows, r.caps, short); err != nil {
		t.Errorf("a step that fits, after the failure: %v", err)
	}
}
