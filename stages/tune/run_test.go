package tune

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/tokenizer"
	registry "github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/store"
)

// tinyModel is a text tower small enough for a test run in well under a
// second per epoch, with CLIP's vocabulary size so the real tokenizer fits.
const tinyModel = `{"embed_dim": 16,
 "vision_cfg": {"image_size": 32, "patch_size": 16, "width": 32, "layers": 1, "head_width": 16, "mlp_ratio": 2},
 "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 1, "mlp_ratio": 2},
 "quick_gelu": true}`

// syntheticVocab writes a vocabulary file in bpe_simple_vocab_16e6's shape
// (a version line and 48,894 merges) made of pairs of single-byte symbols:
// a valid CLIP BPE vocabulary (real text tokenises with it), built by the
// test so that it needs no file from outside the repository.
func syntheticVocab(t *testing.T, dir string) string {
	t.Helper()
	// bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest
	// to U+0100 onwards; use the printable ASCII ones (94 symbols).
	var syms []string
	for c := '!'; c <= '~'; c++ {
		syms = append(syms, string(c))
	}
	var b strings.Builder
	b.WriteString("#version: synthetic\n")
	n := 0
	for _, x := range syms {
		for _, y := range syms {
			for _, z := range []string{"", "</w>"} {
				if n == 48894 {
					break
				}
				fmt.Fprintf(&b, "%s %s%s\n", x, y, z)
				n++
			}
		}
	}
	// 94·94·2 = 17,672 pair merges; fill with merges of merged pairs.
	for i := 0; n < 48894; i++ {
		x, y := syms[i%94], syms[(i/94)%94]
		z, w := syms[(i/8836)%94], syms[(i/5)%94]
		fmt.Fprintf(&b, "%s%s %s%s\n", x, y, z, w)
		n++
	}
	p := filepath.Join(dir, "vocab.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testWorld writes a synthetic training cache (2 views per image) and val
// cache, classes.json, the tiny model config and a vocabulary.
type testWorld struct {
	dir, cache, val, classes, model, vocab string
	// the same rows in memory, for RunInputs
	train, valMem *MemSource
	classList     []inat.Class
	tok           *tokenizer.Tokenizer // loaded once from vocab
}

func newTestWorld(t *testing.T) *testWorld {
	t.Helper()
	return newTestWorldSized(t, 5, 40, 15)
}

// worldImageSeed is the seed of the test caches' recorded image tower.
const worldImageSeed = 3

// worldSpecies name the synthetic classes; newTestWorldSized takes the first k.
var worldSpecies = []string{"Junco hyemalis", "Turdus migratorius", "Quercus alba", "Amanita muscaria", "Danaus plexippus",
	"Apis mellifera", "Bufo bufo", "Acer rubrum", "Vulpes vulpes", "Pieris rapae"}

// newTestWorldSized is newTestWorld with k classes (at most 10), nTrain
// training and nVal val images, the classes taking turns.
func newTestWorldSized(t *testing.T, k, nTrain, nVal int) *testWorld {
	t.Helper()
	dir := t.TempDir()
	w := &testWorld{dir: dir, cache: filepath.Join(dir, "cache"), val: filepath.Join(dir, "val"),
		classes: filepath.Join(dir, "classes.json"), model: filepath.Join(dir, "model.json")}
	w.vocab = syntheticVocab(t, dir)
	if err := os.WriteFile(w.model, []byte(tinyModel), 0o644); err != nil {
		t.Fatal(err)
	}
	names := worldSpecies[:k]
	var classes []inat.Class
	for k, n := range names {
		classes = append(classes, inat.Class{ID: 100 + k, Name: n, Caption: "A photo of the " + n})
	}
	if err := inat.WriteClasses(w.classes, classes); err != nil {
		t.Fatal(err)
	}
	const D = 16
	rng := rand.New(rand.NewPCG(1, 1))
	centres := make([][]float32, len(names))
	for k := range centres {
		centres[k] = make([]float32, D)
		for d := range centres[k] {
			centres[k][d] = float32(rng.NormFloat64())
		}
	}
	w.classList = classes
	// The caches record a random image tower of tinyModel, as extract would
	// (the rows are synthetic, not its output): tune copies it into final/.
	tinyCfg, err := clip.ParseConfig([]byte(tinyModel))
	if err != nil {
		t.Fatal(err)
	}
	tower := &store.TowerSource{Config: []byte(tinyModel), Weights: clip.RandomWeights(worldImageSeed)}
	fp, err := registryFingerprint(tinyCfg, tower.Weights)
	if err != nil {
		t.Fatal(err)
	}
	write := func(dir, split string, n, views int) *MemSource {
		mem := &MemSource{D: D, V: views}
		c, err := store.Create(dir, store.Manifest{Fingerprint: fp, Model: "synthetic rows, random tinyModel tower", Tower: tower,
			Dim: D, DType: store.Float32, Views: views})
		if err != nil {
			t.Fatal(err)
		}
		pw, err := c.NewPart("part-000000", split, "000000.tar")
		if err != nil {
			t.Fatal(err)
		}
		emb := make([]float32, D)
		for i := 0; i < n; i++ {
			k := i % len(names)
			for v := 0; v < views; v++ {
				for d := range emb {
					emb[d] = centres[k][d] + 0.3*float32(rng.NormFloat64())
				}
				if err := pw.Add(fmt.Sprintf("%s-%04d", split, i), int32(classes[k].ID), v, classes[k].Caption, emb); err != nil {
					t.Fatal(err)
				}
				mem.Emb = append(mem.Emb, emb...)
			}
			mem.Labels = append(mem.Labels, int32(classes[k].ID))
			mem.Captions = append(mem.Captions, classes[k].Caption)
		}
		if _, err := pw.Commit(0, 1, nil); err != nil {
			t.Fatal(err)
		}
		return mem
	}
	w.train = write(w.cache, "train", nTrain, 2)
	w.valMem = write(w.val, "val", nVal, 1)
	return w
}

// runMem is Run on the in-memory copy of the caches (no store involved).
func (w *testWorld) runMem(t *testing.T, cfg Config) (Result, error) {
	t.Helper()
	mcfg, err := clip.LoadConfig(cfg.Model)
	if err != nil {
		t.Fatal(err)
	}
	if w.tok == nil {
		if w.tok, err = tokenizer.Load(cfg.Vocab); err != nil {
			t.Fatal(err)
		}
	}
	in, err := BuildInputs(cfg, mcfg, mcfg.Text.ContextLength, w.tok, w.classList, w.train, w.valMem)
	if err != nil {
		t.Fatal(err)
	}
	return RunInputs(context.Background(), cfg, in)
}

func (w *testWorld) config(out string) Config {
	cfg := DefaultConfig()
	cfg.Cache, cfg.ValCache, cfg.Classes, cfg.Model, cfg.Vocab, cfg.Out = w.cache, w.val, w.classes, w.model, w.vocab, out
	cfg.Epochs, cfg.BatchSize, cfg.Warmup, cfg.LR, cfg.Seed = 3, 8, 3, 1e-3, 5
	cfg.Quiet = true
	return cfg
}

// TestResumeIsExact stops a run after step k (mid-epoch and at an epoch
// end), resumes it, and requires the final weights, optimizer state and
// metrics to equal an uninterrupted run's bit for bit (samples_per_s, a
// timing, excepted).
func TestResumeIsExact(t *testing.T) {
	w := newTestWorld(t)
	full := filepath.Join(w.dir, "full")
	base := w.config(full)
	base.Epochs = 2
	ref, err := w.runMem(t, base)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Steps != 10 || ref.Epochs != 2 || !ref.HasVal || ref.Final == "" {
		t.Fatalf("uninterrupted run: %+v", ref)
	}
	t.Run("resume a finished run", func(t *testing.T) {
		cfg := base
		cfg.Resume = true
		r, err := w.runMem(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if r.ResumedFrom != ref.Steps || r.Steps != ref.Steps || r.Loss != ref.Loss || r.Top1 != ref.Top1 || r.Final == "" {
			t.Fatalf("resumed finished run: %+v, first %+v", r, ref)
		}
	})
	for _, k := range []int{6, 5} { // 6: mid-epoch, after a checkpoint at 4; 5: an epoch end
		t.Run(fmt.Sprintf("stop after %d", k), func(t *testing.T) {
			out := filepath.Join(w.dir, fmt.Sprintf("stopped-%d", k))
			cfg := base
			cfg.Out = out
			cfg.StopAfter = k
			cfg.CheckpointEvery = 4 // a checkpoint before the stop too: resume takes the latest
			r1, err := w.runMem(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !r1.Stopped || r1.Steps != k || r1.Final != "" {
				t.Fatalf("stopped run: %+v", r1)
			}
			cfg.StopAfter = 0
			cfg.Resume = true
			r2, err := w.runMem(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r2.ResumedFrom != k || r2.Steps != ref.Steps {
				t.Fatalf("resumed run: from %d to %d, want %d to %d", r2.ResumedFrom, r2.Steps, k, ref.Steps)
			}
			for _, f := range []string{"final/" + modelFile, "checkpoints/" + checkpointName(10) + "/" + optimizerFile} {
				a, errA := os.ReadFile(filepath.Join(full, f))
				b, errB := os.ReadFile(filepath.Join(out, f))
				if errA != nil || errB != nil {
					t.Fatal(errA, errB)
				}
				if !bytes.Equal(a, b) {
					t.Errorf("%s differs from the uninterrupted run", f)
				}
			}
			sa, ea, err := ReadMetrics(filepath.Join(full, "metrics.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			sb, eb, err := ReadMetrics(filepath.Join(out, "metrics.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			if len(sa) != len(sb) || len(ea) != len(eb) {
				t.Fatalf("metrics: %d step and %d epoch lines, uninterrupted %d and %d", len(sb), len(eb), len(sa), len(ea))
			}
			for i := range sa {
				sa[i].SamplesPerS, sb[i].SamplesPerS = 0, 0
				if sa[i] != sb[i] {
					t.Errorf("step line %d: %+v, uninterrupted %+v", i, sb[i], sa[i])
				}
			}
			for i := range ea {
				if ea[i].Loss != eb[i].Loss || *ea[i].Top1 != *eb[i].Top1 || *ea[i].Top5 != *eb[i].Top5 || *ea[i].ValLoss != *eb[i].ValLoss || ea[i].Step != eb[i].Step {
					t.Errorf("epoch line %d differs: %+v vs %+v", i, eb[i], ea[i])
				}
			}
		})
	}
}

// TestRunOutputs checks the run folder: metrics lines as the contract says,
// a final tower clip.LoadTextTower reads, accuracy in [0,1], and the loss
// falling on separable synthetic data. (Two runs of one seed agreeing bit
// for bit is shown by TestResumeIsExact.)
func TestRunOutputs(t *testing.T) {
	w := newTestWorld(t)
	cfg := w.config(filepath.Join(w.dir, "a"))
	cfg.Epochs, cfg.LR, cfg.Warmup = 4, 3e-3, 2
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	steps, epochs, err := ReadMetrics(res.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != res.Steps || len(epochs) != cfg.Epochs {
		t.Fatalf("%d step lines and %d epoch lines for %d steps, %d epochs", len(steps), len(epochs), res.Steps, cfg.Epochs)
	}
	for i, s := range steps {
		if s.Step != i || s.Epoch != i/res.StepsPerEpoch || s.LR <= 0 || s.Unique > cfg.BatchSize || s.Unique < 1 {
			t.Errorf("step line %d: %+v", i, s)
		}
		if s.LogitScale < 0 || s.LogitScale > math.Log(100)+1e-6 {
			t.Errorf("step %d: logit scale %g outside [0, ln 100]", i, s.LogitScale)
		}
	}
	for _, e := range epochs {
		if e.Top1 == nil || *e.Top1 < 0 || *e.Top1 > 1 || *e.Top5 < *e.Top1 || *e.Top5 > 1 || e.ValLoss == nil {
			t.Errorf("epoch line %+v", e)
		}
	}
	if first, last := epochs[0].Loss, epochs[len(epochs)-1].Loss; !(last < first) {
		t.Errorf("training loss did not fall: epoch 1 %.4f, epoch %d %.4f", first, len(epochs), last)
	}
	mcfg, err := clip.LoadConfig(filepath.Join(res.Final, "open_clip_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	tt, err := clip.LoadTextTower(cfg.backend(), mcfg, filepath.Join(res.Final, modelFile))
	if err != nil {
		t.Fatalf("final tower does not load: %v", err)
	}
	tt.Free()

	t.Run("a fresh run into a run folder is refused", func(t *testing.T) {
		if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--resume") {
			t.Fatalf("err = %v, want a refusal pointing at --resume", err)
		}
	})

}

func TestRunErrors(t *testing.T) {
	w := newTestWorld(t)
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no cache", func(c *Config) { c.Cache = "" }, "--cache"},
		{"missing cache", func(c *Config) { c.Cache = filepath.Join(w.dir, "nope") }, "nope"},
		{"batch larger than cache", func(c *Config) { c.BatchSize = 1000 }, "fewer than one batch"},
		{"bad schedule", func(c *Config) { c.Schedule = "linear" }, "--schedule"},
		// A text model of another embed_dim: textdim_test.go.
		{"fingerprint", func(c *Config) { c.ExpectFingerprint = "other" }, "other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := w.config(filepath.Join(w.dir, "err"))
			tc.edit(&cfg)
			_, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestImageHeadAndCachedCaptions trains with the optional image head and the
// captions stored in the cache: the head is checkpointed, resumed bit-exactly
// and exported beside the final tower.
func TestImageHeadAndCachedCaptions(t *testing.T) {
	w := newTestWorld(t)
	cfg := w.config(filepath.Join(w.dir, "head"))
	cfg.ImageHead, cfg.Captions, cfg.Epochs = true, CaptionsFromCache, 2
	ref, err := w.runMem(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ref.Final, headFile)); err != nil {
		t.Fatalf("no image head beside the final tower: %v", err)
	}
	cfg2 := cfg
	cfg2.Out = filepath.Join(w.dir, "head-resumed")
	cfg2.StopAfter = 3
	if _, err := w.runMem(t, cfg2); err != nil {
		t.Fatal(err)
	}
	cfg2.StopAfter, cfg2.Resume = 0, true
	if _, err := w.runMem(t, cfg2); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{modelFile, headFile} {
		a, _ := os.ReadFile(filepath.Join(ref.Final, f))
		b, _ := os.ReadFile(filepath.Join(cfg2.Out, "final", f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("final %s differs after resume", f)
		}
	}
	t.Run("resume without --image-head refused", func(t *testing.T) {
		cfg3 := cfg2
		cfg3.ImageHead = false
		if _, err := w.runMem(t, cfg3); err == nil || !strings.Contains(err.Error(), "differ") {
			t.Fatalf("err = %v, want a settings mismatch", err)
		}
	})
}

// TestImageHeadIdentityStart: a head on equal widths starts as the identity,
// so the first step's loss and text gradients equal the locked-image step's.
func TestImageHeadIdentityStart(t *testing.T) {
	fx := loadFixture(t)
	be := backend.NewCPU()
	B, T, E := fx.B, fx.T, fx.E
	plain := fx.trainer(t, be, TrainerOptions{Dedup: true, Trim: true})
	withHead := fx.trainer(t, be, TrainerOptions{Dedup: true, Trim: true})
	withHead.head = NewImageHead(be, E, E, 1)
	a := plain.Step(fx.Img[:B*E], fx.IDs[:B*T], B, T)
	b := withHead.Step(fx.Img[:B*E], fx.IDs[:B*T], B, T)
	if a.Loss != b.Loss {
		t.Fatalf("loss with identity head %.9g, without %.9g", b.Loss, a.Loss)
	}
	g := map[string][]float32{}
	for _, p := range plain.Text().Params() {
		g[p.Name] = be.ToFloat32(p.Grad, nil)
	}
	for _, p := range withHead.Text().Params() {
		if d := relL2(be.ToFloat32(p.Grad, nil), g[p.Name]); d != 0 {
			t.Errorf("%s gradient differs by %.2g with an identity head", p.Name, d)
		}
	}
	hw := be.ToFloat32(withHead.head.dw, nil)
	var n float64
	for _, v := range hw {
		n += float64(v) * float64(v)
	}
	if n == 0 {
		t.Error("image head weight got no gradient")
	}
}

// cancelSource cancels the run's context once `after` rows have been read:
// an interruption (Ctrl-C, SIGTERM) in the middle of a step.
type cancelSource struct {
	*MemSource
	after  int
	reads  int
	cancel context.CancelFunc
}

func (s *cancelSource) Row(i, v int, dst []float32) int32 {
	s.reads++
	if s.reads == s.after {
		s.cancel()
	}
	return s.MemSource.Row(i, v, dst)
}

// TestInterruptCheckpoints cancels a run during step 3's batch: the step in
// hand finishes, a checkpoint is written, the error wraps context.Canceled,
// and --resume ends where the uninterrupted run does.
func TestInterruptCheckpoints(t *testing.T) {
	w := newTestWorld(t)
	base := w.config(filepath.Join(w.dir, "full"))
	base.Epochs = 1
	ref, err := w.runMem(t, base)
	if err != nil {
		t.Fatal(err)
	}
	cfg := base
	cfg.Out = filepath.Join(w.dir, "interrupted")
	mcfg, err := clip.LoadConfig(cfg.Model)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &cancelSource{MemSource: w.train, after: 2*cfg.BatchSize + 3, cancel: cancel}
	in, err := BuildInputs(cfg, mcfg, mcfg.Text.ContextLength, w.tok, w.classList, src, w.valMem)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := RunInputs(ctx, cfg, in)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if r1.Steps != 3 || !strings.HasSuffix(r1.Checkpoint, checkpointName(3)) {
		t.Fatalf("interrupted run: %d steps, checkpoint %q; want 3 and %s", r1.Steps, r1.Checkpoint, checkpointName(3))
	}
	cfg.Resume = true
	r2, err := w.runMem(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(ref.Final, modelFile))
	b, _ := os.ReadFile(filepath.Join(r2.Final, modelFile))
	if r2.ResumedFrom != 3 || len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("resumed from %d; final weights equal: %v", r2.ResumedFrom, bytes.Equal(a, b))
	}
}

// registryFingerprint is the fingerprint of the caches a CLIP tower of cfg
// with weights makes (the registry's, as extract writes it).
func registryFingerprint(cfg clip.Config, weights string) (string, error) {
	tc, err := registry.ParseConfig(registry.CLIP, cfg.JSON())
	if err != nil {
		return "", err
	}
	return tc.Fingerprint(weights, "")
}
