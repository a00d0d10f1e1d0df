package bundle_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/tokenizer"
	"github.com/litcache/litcache/internal/tokenizer/clipvocab"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/stages/bundle"
	"github.com/litcache/litcache/stages/demo"
	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/stages/tune"
	"github.com/litcache/litcache/store"
)

// fakeRun is a tune run folder as tune leaves it (config.json, final/ with
// the text tower and its config), the cache manifest it was tuned on (with
// its recorded tower) and a classes.json: everything bundle reads, without
// the minutes of tuning. The run records no vocabulary: it was tuned with
// CLIP's, built in.
type fakeRun struct {
	dir, model, classes, cache string
	towerModel, towerPool      string // the cache's image tower (built-in name)
	cfg                        clip.Config
	imageSeed                  int64
	logit                      float32
	cls                        []inat.Class
	fingerprint                string // the cache's
}

// newFakeRun is a run on a cache of the random clip-tiny-sized demo tower,
// final/ holding the text tower alone (tune --text-only).
func newFakeRun(t *testing.T) fakeRun {
	t.Helper()
	root := t.TempDir()
	model := filepath.Join(root, "model.json")
	if err := os.WriteFile(model, demo.ModelJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	return newFakeRunOn(t, root, model, "")
}

// newFakeRunOn is newFakeRun on a cache of the tower towerModel (a config
// file or built-in name) with pooling pool; the text tower is the demo's,
// with the tower's embedding width.
func newFakeRunOn(t *testing.T, root, towerModel, pool string) fakeRun {
	t.Helper()
	r := fakeRun{dir: filepath.Join(root, "run"), model: filepath.Join(root, "text_model.json"),
		classes: filepath.Join(root, "classes.json"), cache: filepath.Join(root, "cache"),
		towerModel: towerModel, towerPool: pool, imageSeed: 7, logit: 3.25}
	tc, err := tower.Resolve(towerModel)
	if err != nil {
		t.Fatal(err)
	}
	dim, err := tc.Dim(pool)
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg, err = clip.ParseConfig(demo.ModelJSON); err != nil {
		t.Fatal(err)
	}
	r.cfg.EmbedDim = dim
	if err := clip.WriteConfigFile(r.model, r.cfg); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"Junco hyemalis", "Melozone crissalis", "Picoides pubescens"} {
		c := inat.Class{ID: 100 + i, Name: name, CommonName: []string{"Dark-eyed Junco", "California Towhee", "Downy Woodpecker"}[i],
			Kingdom: "Animalia", Phylum: "Chordata", Class: "Aves", Order: "Passeriformes", Family: "Passerellidae",
			Genus: strings.Fields(name)[0], SpecificEpithet: strings.Fields(name)[1]}
		c.Caption = "A photo of the " + c.CommonName + " " + c.Name
		r.cls = append(r.cls, c)
	}
	if err := inat.WriteClasses(r.classes, r.cls); err != nil {
		t.Fatal(err)
	}
	if r.fingerprint, err = tc.Fingerprint(r.weights(), pool); err != nil {
		t.Fatal(err)
	}
	p, _ := tc.Pool(pool)
	rec := &store.TowerSource{Family: tc.Family(), Config: tc.JSON(), Weights: r.weights(), Pool: p}
	c, err := store.Create(r.cache, store.Manifest{Fingerprint: r.fingerprint, Model: "test", Dim: dim, DType: store.Float32,
		Views: 1, Normalized: true, Tower: rec})
	if err != nil {
		t.Fatal(err)
	}
	// The manifest comes with the first committed part: one row.
	pw, err := c.NewPart("part-000000", "train", "shard-000000.tar")
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.Add("k0", 0, 0, r.cls[0].Caption, make([]float32, dim)); err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Commit(0, 1, nil); err != nil {
		t.Fatal(err)
	}
	be := backend.NewCPU()
	text := clip.NewRandomTextTower(be, r.cfg, 5)
	defer text.Free()
	if err := os.MkdirAll(filepath.Join(r.dir, "final"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := clip.SaveTextTower(r.finalFile(), r.cfg, text, r.logit); err != nil {
		t.Fatal(err)
	}
	cfg := tune.DefaultConfig()
	cfg.Cache, cfg.Classes, cfg.Model, cfg.Out = r.cache, r.classes, r.model, r.dir
	js, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(r.dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r fakeRun) weights() string { return clip.RandomWeights(r.imageSeed) }
func (r fakeRun) finalFile() string {
	return filepath.Join(r.dir, "final", "open_clip_model.safetensors")
}

// makeFull turns final/ into tune's default form: the full model, the
// cache's CLIP image tower beside the tuned text tower, with the cache's
// fingerprint in its metadata.
func (r fakeRun) makeFull(t *testing.T) {
	t.Helper()
	be := backend.NewCPU()
	m := clip.NewRandomModel(be, r.cfg, r.imageSeed) // extract's random tower of the seed
	defer m.Free()
	text, err := clip.LoadTextTower(be, r.cfg, r.finalFile())
	if err != nil {
		t.Fatal(err)
	}
	defer text.Free()
	full := &clip.Model{Config: r.cfg, Vision: m.Vision, Text: text, LogitScale: r.logit}
	meta := map[string]string{clip.MetaImageFingerprint: r.fingerprint, clip.MetaImageWeights: r.weights()}
	if err := clip.SaveModelMeta(r.finalFile(), full, clip.OpenCLIP, meta); err != nil {
		t.Fatal(err)
	}
}

// config names the cache's tower explicitly.
func (r fakeRun) config(out string) bundle.Config {
	c := r.own(out)
	c.Model, c.Weights, c.Pool = r.towerModel, r.weights(), r.towerPool
	return c
}

// own leaves the tower to the run.
func (r fakeRun) own(out string) bundle.Config {
	c := bundle.DefaultConfig()
	c.Run, c.Out, c.Quiet = r.dir, out, true
	return c
}

// The bundle holds the run's class embeddings as evaluate builds them, the
// tower that made the cache, the run's logit scale and every class's
// taxonomy; predict's answers need nothing else.
func TestRunBuildsTheRunsClassifier(t *testing.T) {
	r := newFakeRun(t)
	out := filepath.Join(t.TempDir(), "b.safetensors")
	cfg := r.config(out)
	cfg.Templates = "openai"
	res, err := bundle.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Classes != 3 || res.Templates != len(evaluate.OpenAITemplates) || res.Bytes == 0 {
		t.Errorf("result %+v", res)
	}
	b, err := bundle.Open(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// Class embeddings: evaluate.ClassEmbeddings on the run's tower, all classes in one call.
	be := backend.NewCPU()
	text, err := clip.LoadTextTower(be, r.cfg, r.finalFile())
	if err != nil {
		t.Fatal(err)
	}
	defer text.Free()
	tok, err := tokenizer.CLIP() // the run records no vocabulary: CLIP's, built in
	if err != nil {
		t.Fatal(err)
	}
	want, err := evaluate.ClassEmbeddings(text, tok, r.cls, evaluate.OpenAITemplates, r.cfg.Text.ContextLength)
	if err != nil {
		t.Fatal(err)
	}
	got := readClassEmbeddings(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d class-embedding values, want %d", len(got), len(want))
	}
	for i := range want {
		// The bundle encodes in chunks of classes, other batch shapes: measured ≤ 1e-7.
		if math.Abs(float64(got[i]-want[i])) > 1e-5 {
			t.Fatalf("class embedding value %d: %g, want %g", i, got[i], want[i])
		}
	}
	if b.LogitScale() != r.logit {
		t.Errorf("logit_scale %g, want the run's %g", b.LogitScale(), r.logit)
	}

	// The tower is extract's random tower of the same seed.
	m := clip.NewRandomModel(be, r.cfg, r.imageSeed)
	defer m.Free()
	px := make([]float32, 3*64*64)
	for i := range px {
		px[i] = float32(i%97)/50 - 1
	}
	a, c := m.Vision.Encode(px, 1), b.Tower().Encode(px, 1)
	if len(a) != len(c) {
		t.Fatalf("bundle tower gives %d values, extract's %d", len(c), len(a))
	}
	for i := range a {
		if a[i] != c[i] {
			t.Fatalf("bundle tower output %d: %g, extract's tower %g", i, c[i], a[i])
		}
	}

	meta := b.Meta
	if meta.Fingerprint != r.fingerprint || meta.Tower != tower.CLIP || len(meta.Templates) != len(evaluate.OpenAITemplates) {
		t.Errorf("meta fingerprint %s tower %s, %d templates", meta.Fingerprint, meta.Tower, len(meta.Templates))
	}
	if cfg, err := clip.ParseConfig(meta.ModelConfig); err != nil || cfg.Vision != r.cfg.Vision {
		t.Errorf("model config %s: %v", meta.ModelConfig, err)
	}
	if !meta.Preprocess.EXIF || meta.Preprocess.Size != 64 {
		t.Errorf("preprocess %+v", meta.Preprocess)
	}
	for i, c := range meta.Classes {
		w := r.cls[i]
		tx := c.Taxonomy
		if c.ID != w.ID || c.Name != w.Name || c.CommonName != w.CommonName || tx.Kingdom != w.Kingdom || tx.Phylum != w.Phylum ||
			tx.Class != w.Class || tx.Order != w.Order || tx.Family != w.Family || tx.Genus != w.Genus || tx.Species != w.Name {
			t.Errorf("class %d: %+v, want %+v", i, c, w)
		}
	}
}

func readClassEmbeddings(t *testing.T, path string) []float32 {
	t.Helper()
	f, err := openSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, _, err := f.Float32(bundle.TensorClassEmbeddings)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A tower other than the cache's is refused, naming both fingerprints; so
// is a run whose cache is gone, unless --cache says where it is.
func TestRunRefusesAnotherTower(t *testing.T) {
	r := newFakeRun(t)
	out := filepath.Join(t.TempDir(), "b.safetensors")
	cfg := r.config(out)
	cfg.Weights = clip.RandomWeights(r.imageSeed + 1)
	_, err := bundle.Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "fingerprint") || !strings.Contains(err.Error(), r.cache) {
		t.Fatalf("another tower: error %v, want a fingerprint refusal naming the cache", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused bundle was written")
	}

	moved := r.cache + "-moved"
	if err := os.Rename(r.cache, moved); err != nil {
		t.Fatal(err)
	}
	cfg = r.config(out)
	if _, err := bundle.Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--cache") {
		t.Fatalf("cache gone: error %v, want one pointing at --cache", err)
	}
	cfg.Cache = moved
	if _, err := bundle.Run(context.Background(), cfg); err != nil {
		t.Fatalf("with --cache: %v", err)
	}
}

func TestRunRejectsBadInputs(t *testing.T) {
	r := newFakeRun(t)
	out := filepath.Join(t.TempDir(), "b.safetensors")
	cases := []struct {
		name string
		edit func(*bundle.Config)
		want string
	}{
		{"no run", func(c *bundle.Config) { c.Run = "" }, "--run"},
		{"not a run", func(c *bundle.Config) { c.Run = t.TempDir() }, "not a tune run"},
		{"no weights", func(c *bundle.Config) { c.Weights = "" }, "--weights"},
		{"no model", func(c *bundle.Config) { c.Model = "" }, "--model"},
		{"pool of the run's own", func(c *bundle.Config) { c.Model, c.Weights, c.Pool = "", "", "cls" }, "--pool"},
		{"bad pool", func(c *bundle.Config) { c.Pool = "max" }, `not "max"`},
		{"bad vocab", func(c *bundle.Config) { c.Vocab = filepath.Join(t.TempDir(), "none.txt.gz") }, "--vocab"},
		{"batch size", func(c *bundle.Config) { c.BatchSize = 0 }, "--batch-size"},
		{"bad templates", func(c *bundle.Config) { c.Templates = filepath.Join(t.TempDir(), "none.txt") }, "templates"},
		{"bad classes", func(c *bundle.Config) { c.Classes = filepath.Join(t.TempDir(), "none.json") }, "--classes"},
		{"bad model", func(c *bundle.Config) { c.Model = "ViT-Q-99" }, "--model"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := r.config(out)
			c.edit(&cfg)
			_, err := bundle.Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	if err := os.RemoveAll(filepath.Join(r.dir, "final")); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Run(context.Background(), r.config(out)); err == nil || !strings.Contains(err.Error(), "final") {
		t.Fatalf("unfinished run: error %v", err)
	}
}

func openSafetensors(path string) (*safetensors.File, error) { return safetensors.Open(path) }

// Both of tune's forms of final/ make the same bundle: a full model (its own
// image tower, the fingerprint it records) and the text tower alone (the
// tower the cache records). Either form also takes the tower named, and
// refuses another, naming what the run was tuned against.
func TestRunAcceptsBothFinalForms(t *testing.T) {
	r := newFakeRun(t)
	dir := t.TempDir()
	build := func(name string, cfg bundle.Config) []float32 {
		t.Helper()
		res, err := bundle.Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Fingerprint != r.fingerprint || res.Family != tower.CLIP {
			t.Errorf("%s: result %+v, want the cache's fingerprint %s", name, res, r.fingerprint)
		}
		b, err := bundle.Open(cfg.Out, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		px := make([]float32, 3*64*64)
		for i := range px {
			px[i] = float32(i%89)/45 - 1
		}
		return append(b.Tower().Encode(px, 1), readClassEmbeddings(t, cfg.Out)...)
	}
	textOnly := build("text alone, recorded tower", r.own(filepath.Join(dir, "a.safetensors")))
	named := build("text alone, named tower", r.config(filepath.Join(dir, "b.safetensors")))
	r.makeFull(t)
	full := build("full model", r.own(filepath.Join(dir, "c.safetensors")))
	fullNamed := build("full model, named tower", r.config(filepath.Join(dir, "d.safetensors")))
	for name, got := range map[string][]float32{"named": named, "full": full, "full, named": fullNamed} {
		if !slices.Equal(got, textOnly) {
			t.Errorf("%s: tower outputs and class embeddings differ from the text-only run's", name)
		}
	}

	// The full model needs no cache: its record is the fingerprint.
	if err := os.RemoveAll(r.cache); err != nil {
		t.Fatal(err)
	}
	build("full model, cache gone", r.own(filepath.Join(dir, "e.safetensors")))
	cfg := r.config(filepath.Join(dir, "f.safetensors"))
	cfg.Weights = clip.RandomWeights(r.imageSeed + 1)
	if _, err := bundle.Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "fingerprint") ||
		!strings.Contains(err.Error(), r.finalFile()) {
		t.Fatalf("full model, another tower: %v, want a fingerprint refusal naming %s", err, r.finalFile())
	}
}

// A run on a DINOv2 cache (final/ holds the text tower alone: no OpenCLIP
// model holds a DINOv2 tower) bundles through the registry as CLIP's does:
// the recorded tower or the one named, with its pooling; the bundle's tower
// is dinov2's own model of the seed, and another pooling is refused.
func TestRunOtherFamilies(t *testing.T) {
	for _, tc := range []struct{ model, pool string }{{"dinov2-tiny", "cls+mean"}, {"swin-tiny", ""}} {
		t.Run(tc.model, func(t *testing.T) {
			r := newFakeRunOn(t, t.TempDir(), tc.model, tc.pool)
			dir := t.TempDir()
			for _, cfg := range []bundle.Config{r.own(filepath.Join(dir, "own.safetensors")), r.config(filepath.Join(dir, "named.safetensors"))} {
				res, err := bundle.Run(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				want, err := tower.Load(backend.NewCPU(), tower.Spec{Model: tc.model, Weights: r.weights(), Pool: tc.pool})
				if err != nil {
					t.Fatal(err)
				}
				defer want.Free()
				if res.Family != want.Family() || res.Fingerprint != r.fingerprint {
					t.Errorf("result %+v", res)
				}
				b, err := bundle.Open(cfg.Out, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				S := b.InputSize()
				px := make([]float32, 2*3*S*S)
				for i := range px {
					px[i] = float32(i%83)/42 - 1
				}
				if got, w := b.Tower().Encode(px, 2), want.Encode(px, 2); !slices.Equal(got, w) {
					t.Fatalf("bundle tower: %d values %v…, the registry's own %v…", len(got), got[:3], w[:3])
				}
				if b.Meta.Tower != want.Family() || b.Meta.Pool != want.Pool() || b.Meta.Preprocess.Size != S {
					t.Errorf("meta tower %s pool %q size %d", b.Meta.Tower, b.Meta.Pool, b.Meta.Preprocess.Size)
				}
			}
			if tc.pool != "" {
				cfg := r.config(filepath.Join(dir, "cls.safetensors"))
				cfg.Pool = "cls"
				if _, err := bundle.Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "fingerprint") {
					t.Errorf("pool cls on a %s cache: %v, want a fingerprint refusal", tc.pool, err)
				}
			}
		})
	}
}

// The vocabulary: --vocab, else the run's, else $LITCACHE_VOCAB, else
// CLIP's, built in (the other tests run with the last).
func TestRunVocabulary(t *testing.T) {
	r := newFakeRun(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.txt.gz")
	t.Setenv(tokenizer.EnvVocab, missing)
	if _, err := bundle.Run(context.Background(), r.config(filepath.Join(dir, "a.safetensors"))); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("$%s=%s: %v, want an error naming it", tokenizer.EnvVocab, missing, err)
	}
	vocab := filepath.Join(dir, "bpe_simple_vocab_16e6.txt.gz")
	if err := os.WriteFile(vocab, clipvocab.Gzip, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := r.config(filepath.Join(dir, "b.safetensors"))
	cfg.Vocab = vocab // --vocab comes first
	if _, err := bundle.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Open(cfg.Out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Meta.Source.Vocab != vocab {
		t.Errorf("source vocab %q, want %s", b.Meta.Source.Vocab, vocab)
	}
}
