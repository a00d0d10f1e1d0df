package evaluate_test

import (
	"context"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/testutil"
	"github.com/litcache/litcache/internal/tokenizer"
	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/store"
)

// tinyText is a small text tower with CLIP's vocabulary size, so that the
// ids of a CLIP-format vocabulary fit.
const tinyText = `{"embed_dim": 16, "quick_gelu": true,
 "vision_cfg": {"image_size": 32, "patch_size": 16, "width": 32, "layers": 1, "head_width": 16, "mlp_ratio": 2},
 "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1, "mlp_ratio": 2}}`

func testClasses() []inat.Class {
	mk := func(id int, common, super, kingdom, class, genus, ep string) inat.Class {
		c := inat.Class{ID: id, Name: genus + " " + ep, CommonName: common, Supercategory: super,
			Kingdom: kingdom, Phylum: "P" + kingdom, Class: class, Order: "O" + class, Family: "F" + genus,
			Genus: genus, SpecificEpithet: ep}
		c.Caption = "A photo of the " + common + " " + super + " " + c.Name
		return c
	}
	return []inat.Class{
		mk(10, "Red Robin", "Birds", "Animalia", "Aves", "Turdus", "rubra"),
		mk(11, "Black Robin", "Birds", "Animalia", "Aves", "Turdus", "nigra"),
		mk(12, "Green Frog", "Amphibians", "Animalia", "Amphibia", "Rana", "viridis"),
		mk(13, "White Oak", "Plants", "Plantae", "Magnoliopsida", "Quercus", "alba"),
		mk(14, "Blue Fern", "Plants", "Plantae", "Polypodiopsida", "Pteris", "caerulea"),
	}
}

type fixture struct {
	dir, vocab, classes, model string
	cfg                        clip.Config
	tok                        *tokenizer.Tokenizer
	text                       *clip.TextTower
	be                         *backend.CPU
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), be: backend.NewCPU()}
	classes := testClasses()
	var err error
	if f.tok, err = tokenizer.Open(f.vocab); err != nil { // "": CLIP's built-in vocabulary
		t.Fatal(err)
	}
	f.classes = filepath.Join(f.dir, "classes.json")
	if err := inat.WriteClasses(f.classes, classes); err != nil {
		t.Fatal(err)
	}
	f.model = filepath.Join(f.dir, "model.json")
	os.WriteFile(f.model, []byte(tinyText), 0o644)
	if f.cfg, err = clip.LoadConfig(f.model); err != nil {
		t.Fatal(err)
	}
	f.text = clip.NewRandomTextTower(f.be, f.cfg, 3)
	return f
}

func normalized(x []float32) []float32 {
	out := append([]float32(nil), x...)
	evaluate.NormalizeRows(out, 1, len(x))
	return out
}

func TestClassEmbeddingsMatchPlainEncoding(t *testing.T) {
	f := newFixture(t)
	classes := testClasses()
	E, ctx := f.cfg.EmbedDim, f.cfg.Text.ContextLength
	// One prompt per class, full context (no trimming), normalised.
	plain := func(texts []string) [][]float32 {
		ids := f.tok.TokenizeBatch(texts, ctx)
		emb := f.text.Encode(ids, len(texts), ctx)
		var out [][]float32
		for i := range texts {
			out = append(out, normalized(emb[i*E:(i+1)*E]))
		}
		return out
	}
	tmpls := []string{"{caption}", "a photo of a {}.", "{genus} {specific_epithet}"}
	got, err := evaluate.ClassEmbeddings(f.text, f.tok, classes, tmpls, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(classes)*E {
		t.Fatalf("%d values, want %d", len(got), len(classes)*E)
	}
	for k, c := range classes {
		var prompts []string
		for _, tm := range tmpls {
			p, _ := evaluate.ExpandTemplate(tm, c)
			prompts = append(prompts, p)
		}
		embs := plain(prompts)
		mean := make([]float32, E)
		for _, e := range embs {
			for j := range mean {
				mean[j] += e[j] / float32(len(embs))
			}
		}
		want := normalized(mean)
		// float32 encoder: trimmed and full-context runs differ by rounding only.
		for j := 0; j < E; j++ {
			if d := math.Abs(float64(got[k*E+j] - want[j])); d > 2e-5 {
				t.Fatalf("class %d dim %d: %g, want %g", k, j, got[k*E+j], want[j])
			}
		}
	}
	if _, err := evaluate.ClassEmbeddings(f.text, f.tok, classes, []string{"{nope}"}, ctx); err == nil {
		t.Fatal("a bad template was accepted")
	}
}

// base0 is cfg evaluating the text tower in run.
func base0(cfg evaluate.Config, run string) evaluate.Config {
	cfg.Weights = run
	return cfg
}

// writeCache stores, for each class, a few images whose embedding is the
// class's caption embedding plus noise, in split "val", and a "train" part.
func writeCache(t *testing.T, f *fixture, noise float64) string {
	t.Helper()
	classes := testClasses()
	E := f.cfg.EmbedDim
	cls, err := evaluate.ClassEmbeddings(f.text, f.tok, classes, evaluate.CaptionTemplates, f.cfg.Text.ContextLength)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f.dir, "cache")
	c, err := store.Create(dir, store.Manifest{Fingerprint: "test", Model: "test tower", Dim: E, DType: store.Float32, Views: 2})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, split := range []string{"train", "val"} {
		pw, err := c.NewPart(split+"-0", split, split+"-000000.tar")
		if err != nil {
			t.Fatal(err)
		}
		for k, cl := range classes {
			for i := 0; i < 4; i++ {
				for view := 0; view < 2; view++ {
					e := make([]float32, E)
					for j := range e {
						e[j] = cls[k*E+j] + float32(noise*rng.NormFloat64())
					}
					if view == 1 { // the random-crop view is garbage: eval must ignore it
						for j := range e {
							e[j] = float32(rng.NormFloat64())
						}
					}
					key := split + "/" + cl.Name + "/" + string(rune('a'+i))
					if err := pw.Add(key, int32(cl.ID), view, cl.Caption, e); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if _, err := pw.Commit(0, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRun(t *testing.T) {
	f := newFixture(t)
	cache := writeCache(t, f, 0.02)
	final := filepath.Join(f.dir, "run", "final", "open_clip_model.safetensors")
	os.MkdirAll(filepath.Dir(final), 0o755)
	if err := clip.SaveTextTower(final, f.cfg, f.text, 2.0); err != nil {
		t.Fatal(err)
	}
	base := evaluate.DefaultConfig()
	base.Cache, base.Classes, base.Vocab, base.Quiet = cache, f.classes, f.vocab, true

	t.Run("run folder, caption template, report", func(t *testing.T) {
		cfg := base
		cfg.Weights = filepath.Join(f.dir, "run") // resolves run/final
		cfg.Out = filepath.Join(f.dir, "report")
		res, err := evaluate.Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Split != "val" || res.Images != 20 || res.Classes != 5 {
			t.Fatalf("split %q images %d classes %d, want val 20 5", res.Split, res.Images, res.Classes)
		}
		if res.Top1 != 1 || res.Top5 != 1 {
			t.Fatalf("top-1 %.3f top-5 %.3f: images are their class's caption embedding + small noise", res.Top1, res.Top5)
		}
		if math.Abs(res.Chance1-0.2) > 1e-12 || res.Chance5 != 1 {
			t.Fatalf("chance %v %v", res.Chance1, res.Chance5)
		}
		if len(res.Ranks) != len(inat.Ranks) || len(res.Supercategories) != 3 {
			t.Fatalf("breakdown: %+v", res.Breakdown)
		}
		for _, p := range res.Files {
			if _, err := os.Stat(p); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(p, ".png") {
				fh, _ := os.Open(p)
				if _, err := png.Decode(fh); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				fh.Close()
			}
		}
		md, _ := os.ReadFile(filepath.Join(cfg.Out, evaluate.ReportMarkdown))
		for _, want := range []string{"| zero-shot", "| chance", "By taxonomic rank", "Amphibians", evaluate.RankChart} {
			if !strings.Contains(string(md), want) {
				t.Errorf("eval.md lacks %q", want)
			}
		}
	})

	// random:SEED is the random-init tower of that seed: the same scores as
	// the saved run, whose tower is clip.NewRandomTextTower(seed 3).
	t.Run("random weights", func(t *testing.T) {
		cfg := base
		cfg.Weights = "random:3"
		if _, err := evaluate.Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--model") {
			t.Fatalf("err %v, want one asking for --model", err)
		}
		cfg.Model = f.model
		got, err := evaluate.Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Weights, cfg.Model = filepath.Join(f.dir, "run"), ""
		want, err := evaluate.Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got.Top1 != want.Top1 || got.Top5 != want.Top5 || got.Images != want.Images || !reflect.DeepEqual(got.Ranks, want.Ranks) {
			t.Fatalf("random:3 scores top-1 %v top-5 %v, the saved seed-3 tower %v %v", got.Top1, got.Top5, want.Top1, want.Top5)
		}
	})

	// A full model (tune's default final/: image tower + tuned text tower)
	// scores as its text tower alone does; one whose image tower made other
	// caches is refused.
	t.Run("full model", func(t *testing.T) {
		want, err := evaluate.Run(context.Background(), base0(base, filepath.Join(f.dir, "run")))
		if err != nil {
			t.Fatal(err)
		}
		be := backend.NewCPU()
		for _, tc := range []struct{ fingerprint, err string }{{"test", ""}, {"", ""}, {"sha256:another-tower", "another-tower"}} {
			dir := filepath.Join(f.dir, "full-"+strings.TrimPrefix(tc.fingerprint, "sha256:"), "final")
			os.MkdirAll(dir, 0o755)
			m := &clip.Model{Config: f.cfg, Vision: clip.NewRandomVisionTower(be, f.cfg, 1), Text: f.text, LogitScale: 2}
			meta := map[string]string{}
			if tc.fingerprint != "" {
				meta[clip.MetaImageFingerprint] = tc.fingerprint
			}
			if err := clip.SaveModelMeta(filepath.Join(dir, "open_clip_model.safetensors"), m, clip.OpenCLIP, meta); err != nil {
				t.Fatal(err)
			}
			got, err := evaluate.Run(context.Background(), base0(base, filepath.Dir(dir)))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("fingerprint %q: err %v, want a refusal naming %q", tc.fingerprint, err, tc.err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Top1 != want.Top1 || got.Top5 != want.Top5 || !reflect.DeepEqual(got.Ranks, want.Ranks) {
				t.Fatalf("full model scores %v/%v, its text tower alone %v/%v", got.Top1, got.Top5, want.Top1, want.Top5)
			}
		}
	})

	t.Run("weights file needs a config", func(t *testing.T) {
		loose := filepath.Join(f.dir, "loose.safetensors")
		data, _ := os.ReadFile(final)
		os.WriteFile(loose, data, 0o644)
		cfg := base
		cfg.Weights = loose
		if _, err := evaluate.Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--model") {
			t.Fatalf("err %v, want one asking for --model", err)
		}
		cfg.Model = f.model
		cfg.Templates = filepath.Join(f.dir, "templates.txt")
		os.WriteFile(cfg.Templates, []byte("a photo of a {}.\n# comment\n{genus} {specific_epithet}\n"), 0o644)
		res, err := evaluate.Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.NumTemplates != 2 || res.Images != 20 {
			t.Fatalf("templates %d images %d", res.NumTemplates, res.Images)
		}
	})

	t.Run("HF weights of a model with a small vocabulary", func(t *testing.T) {
		cfg := base
		cfg.Weights = testutil.Testdata(t, "clip-tiny/weights_hf.safetensors")
		cfg.Model = "clip-tiny"
		if _, err := evaluate.Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "vocabulary of 512") {
			t.Fatalf("err %v, want a vocabulary-size error", err)
		}
	})

	t.Run("errors name the input", func(t *testing.T) {
		cases := []struct {
			name string
			mod  func(*evaluate.Config)
			want string
		}{
			{"no cache", func(c *evaluate.Config) { c.Cache = "" }, "--cache"},
			{"no classes", func(c *evaluate.Config) { c.Classes = "" }, "--classes"},
			{"missing vocab", func(c *evaluate.Config) { c.Vocab = filepath.Join(f.dir, "none.txt.gz") }, "none.txt.gz"},
			{"no text", func(c *evaluate.Config) { c.Weights = "" }, "--weights"},
			{"missing split", func(c *evaluate.Config) { c.Split = "test" }, `no split "test"`},
			{"wrong fingerprint", func(c *evaluate.Config) { c.ExpectFingerprint = "other" }, "other"},
			{"bad templates", func(c *evaluate.Config) { c.Templates = filepath.Join(f.dir, "none.txt") }, "none.txt"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				cfg := base
				cfg.Weights = filepath.Join(f.dir, "run")
				tc.mod(&cfg)
				_, err := evaluate.Run(context.Background(), cfg)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want one containing %q", err, tc.want)
				}
			})
		}
	})
}

// TestClassEmbeddingsRealVocab builds the OpenAI-template classifier with
// CLIP's own (built-in) vocabulary and checks it against encoding each
// prompt alone at full context.
func TestClassEmbeddingsRealVocab(t *testing.T) {
	tok, err := tokenizer.CLIP()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clip.ParseConfig([]byte(tinyText))
	if err != nil {
		t.Fatal(err)
	}
	be := backend.NewCPU()
	text := clip.NewRandomTextTower(be, cfg, 11)
	defer text.Free()
	classes := testClasses()[:2]
	E, ctx := cfg.EmbedDim, cfg.Text.ContextLength
	got, err := evaluate.ClassEmbeddings(text, tok, classes, evaluate.OpenAITemplates, ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range classes {
		mean := make([]float64, E)
		for _, tm := range evaluate.OpenAITemplates {
			p, _ := evaluate.ExpandTemplate(tm, c)
			e := normalized(text.Encode(tok.Tokenize(p, ctx), 1, ctx))
			for j := range mean {
				mean[j] += float64(e[j])
			}
		}
		var n float64
		for _, v := range mean {
			n += v * v
		}
		for j := range mean {
			want := mean[j] / math.Sqrt(n)
			if d := math.Abs(float64(got[k*E+j]) - want); d > 2e-5 {
				t.Fatalf("class %d dim %d: %g, want %g", k, j, got[k*E+j], want)
			}
		}
	}
}
