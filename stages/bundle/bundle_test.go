package bundle_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/tokenizer"
	"github.com/litcache/litcache/stages/bundle"
	"github.com/litcache/litcache/stages/demo"
	"github.com/litcache/litcache/stages/demo/bpe"
	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/stages/extract"
	"github.com/litcache/litcache/stages/tune"
	"github.com/litcache/litcache/store"
)

// fakeRun is a tune run folder as tune leaves it (config.json, final/ with
// the text tower and its config), the cache manifest it was tuned on and a
// classes.json: everything bundle reads, without the minutes of tuning.
type fakeRun struct {
	dir, model, classes, vocab, cache string
	cfg                               clip.Config
	imageSeed                         int64
	logit                             float32
	cls                               []inat.Class
}

func newFakeRun(t *testing.T) fakeRun {
	t.Helper()
	root := t.TempDir()
	r := fakeRun{dir: filepath.Join(root, "run"), model: filepath.Join(root, "model.json"),
		classes: filepath.Join(root, "classes.json"), vocab: filepath.Join(root, "vocab.txt.gz"),
		cache: filepath.Join(root, "cache"), imageSeed: 7, logit: 3.25}
	if err := os.WriteFile(r.model, demo.ModelJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if r.cfg, err = clip.LoadConfig(r.model); err != nil {
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
	var texts []string
	for _, c := range r.cls {
		texts = append(texts, c.Caption, c.CommonName)
	}
	if err := bpe.WriteVocab(r.vocab, texts); err != nil {
		t.Fatal(err)
	}
	fp, err := extract.Fingerprint(r.cfg, clip.RandomWeights(r.imageSeed), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(r.cache, store.Manifest{Fingerprint: fp, Model: "demo", Dim: r.cfg.EmbedDim, DType: store.Float32, Views: 1, Normalized: true}); err != nil {
		t.Fatal(err)
	}
	be := backend.NewCPU()
	text := clip.NewRandomTextTower(be, r.cfg, 5)
	defer text.Free()
	if err := os.MkdirAll(filepath.Join(r.dir, "final"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := clip.SaveTextTower(filepath.Join(r.dir, "final", "open_clip_model.safetensors"), r.cfg, text, r.logit); err != nil {
		t.Fatal(err)
	}
	tc := tune.DefaultConfig()
	tc.Cache, tc.Classes, tc.Vocab, tc.TextModel, tc.Out = r.cache, r.classes, r.vocab, r.model, r.dir
	js, _ := json.Marshal(tc)
	if err := os.WriteFile(filepath.Join(r.dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r fakeRun) config(out string) bundle.Config {
	c := bundle.DefaultConfig()
	c.Run, c.Model, c.Weights, c.Out, c.Quiet = r.dir, r.model, clip.RandomWeights(r.imageSeed), out, true
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
	text, err := clip.LoadTextTower(be, r.cfg, filepath.Join(r.dir, "final", "open_clip_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer text.Free()
	tok, err := tokenizer.Load(r.vocab)
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
	for i := range a {
		if a[i] != c[i] {
			t.Fatalf("bundle tower output %d: %g, extract's tower %g", i, c[i], a[i])
		}
	}

	wantFP, _ := extract.Fingerprint(r.cfg, clip.RandomWeights(r.imageSeed), 0)
	meta := b.Meta
	if meta.Fingerprint != wantFP || meta.Tower != bundle.FamilyCLIP || len(meta.Templates) != len(evaluate.OpenAITemplates) {
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
