package sweep

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/inat"
	registry "github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/stages/tune"
	"github.com/litcache/litcache/store"
)

// towerModel is a model small enough for a sweep of four members in a few
// seconds, with CLIP's vocabulary (the built-in tokenizer fits it).
const towerModel = `{"embed_dim": 16,
 "vision_cfg": {"image_size": 32, "patch_size": 16, "width": 32, "layers": 1, "head_width": 16, "mlp_ratio": 2},
 "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1, "mlp_ratio": 2},
 "quick_gelu": true}`

// towerClasses are six classes in two supercategories and three genera.
func towerClasses() []inat.Class {
	var cls []inat.Class
	for i, sp := range []struct{ genus, epithet, super string }{
		{"Junco", "hyemalis", "Birds"}, {"Junco", "phaeonotus", "Birds"}, {"Turdus", "migratorius", "Birds"},
		{"Quercus", "alba", "Plants"}, {"Quercus", "rubra", "Plants"}, {"Acer", "rubrum", "Plants"},
	} {
		king := map[string]string{"Birds": "Animalia", "Plants": "Plantae"}[sp.super]
		cls = append(cls, inat.Class{ID: 10 + i, Name: sp.genus + " " + sp.epithet, CommonName: "common " + sp.epithet,
			Supercategory: sp.super, Kingdom: king, Phylum: "p-" + sp.super, Class: "c-" + sp.super, Order: "o-" + sp.super,
			Family: "f-" + sp.genus, Genus: sp.genus, SpecificEpithet: sp.epithet})
	}
	return cls
}

// writeTowerCache writes a cache as extract with a random tower of
// towerModel and seed would record it: train and val splits whose rows are
// class centres (drawn from seed) plus noise.
func writeTowerCache(t *testing.T, dir string, seed int64, classes []inat.Class) {
	t.Helper()
	cfg, err := clip.ParseConfig([]byte(towerModel))
	if err != nil {
		t.Fatal(err)
	}
	tower := &store.TowerSource{Config: []byte(towerModel), Weights: clip.RandomWeights(seed)}
	fp, err := registryFingerprint(cfg, tower.Weights)
	if err != nil {
		t.Fatal(err)
	}
	const D = 16
	c, err := store.Create(dir, store.Manifest{Fingerprint: fp, Model: "synthetic rows, random tower seed " + fmt.Sprint(seed),
		Tower: tower, Dim: D, DType: store.Float32, Views: 1})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 2))
	centres := make([][]float32, len(classes))
	for k := range centres {
		centres[k] = make([]float32, D)
		for d := range centres[k] {
			centres[k][d] = float32(rng.NormFloat64())
		}
	}
	for _, split := range []string{"train", "val"} {
		pw, err := c.NewPart("part-"+split, split, split+".tar")
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{"train": 48, "val": 18}[split]
		emb := make([]float32, D)
		for i := 0; i < n; i++ {
			k := i % len(classes)
			for d := range emb {
				emb[d] = centres[k][d] + 0.4*float32(rng.NormFloat64())
			}
			if err := pw.Add(fmt.Sprintf("%s-%03d", split, i), int32(classes[k].ID), 0, classes[k].Caption, emb); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := pw.Commit(0, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSweepTowersAndRecipes is the ablation on a small scale: two
// image towers (caches) × two caption recipes (classes files) at one
// warm-up, four members. Each member records its axes, the cache's
// fingerprint and the recipe's template; the summary has a column per
// varying axis, the image-tower comparison with each tower's best member
// broken down by rank and supercategory, and each member's final/ is a full
// model holding its own cache's tower.
func TestSweepTowersAndRecipes(t *testing.T) {
	dir := t.TempDir()
	if d := os.Getenv("LITCACHE_KEEP_PNG"); d != "" {
		dir = d
	}
	classes := towerClasses()
	var classFiles []string
	for _, r := range []struct{ name, template string }{{"paper", inat.DefaultTemplate}, {"name", "{name}"}} {
		tmpl, err := inat.ParseTemplate(r.template, inat.DefaultOmit)
		if err != nil {
			t.Fatal(err)
		}
		cls := make([]inat.Class, len(classes))
		for i, c := range classes {
			cat := c.Category()
			cls[i] = c
			cls[i].Caption = tmpl.Render(&cat)
		}
		p := filepath.Join(dir, "recipes", r.name, "classes.json")
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := inat.WriteClasses(p, cls); err != nil {
			t.Fatal(err)
		}
		if err := inat.WriteRecipe(p, inat.Recipe{Name: r.name, Template: r.template, Classes: len(cls), DistinctCaptions: len(cls)}); err != nil {
			t.Fatal(err)
		}
		classFiles = append(classFiles, p)
	}
	caches := []string{filepath.Join(dir, "tower-a"), filepath.Join(dir, "tower-b")}
	writeTowerCache(t, caches[0], 7, classes)
	writeTowerCache(t, caches[1], 11, classes)
	model := filepath.Join(dir, "model.json")
	os.WriteFile(model, []byte(towerModel), 0o644)

	base := tune.DefaultConfig()
	base.Model, base.Split, base.ValSplit = model, "train", "val"
	base.Epochs, base.BatchSize, base.LR, base.Seed = 2, 8, 3e-3, 1
	cfg := Config{Base: base, Out: filepath.Join(dir, "sweep"), Member: -1, PruneCheckpoints: true, Quiet: true,
		Grid: Grid{Cache: caches, ValCache: caches, Classes: classFiles, Warmup: []int{5}}}
	res, sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 || sum == nil {
		t.Fatalf("%d members run, summary %v", len(res), sum != nil)
	}
	fps := map[string]string{}
	for _, c := range caches {
		m, _ := store.ReadManifest(c)
		fps[c] = m.Fingerprint
	}
	for _, r := range sum.Rows {
		m := r.Member
		if r.Status != StatusFinished || !r.HasVal {
			t.Errorf("%s: %s, val %v", m.Name, r.Status, r.HasVal)
		}
		if m.Axes["cache"] != m.Cache || m.Axes["val-cache"] != m.Cache || m.Axes["classes"] != m.Classes || m.Axes["warmup"] != "5" {
			t.Errorf("%s: axes %v", m.Name, m.Axes)
		}
		if m.CacheFingerprint != fps[m.Cache] || !strings.Contains(m.CacheModel, "random tower") {
			t.Errorf("%s: cache fingerprint %q model %q", m.Name, m.CacheFingerprint, m.CacheModel)
		}
		if wantT := map[bool]string{true: inat.DefaultTemplate, false: "{name}"}[strings.Contains(m.Classes, "paper")]; m.ClassesTemplate != wantT {
			t.Errorf("%s: template %q, want %q", m.Name, m.ClassesTemplate, wantT)
		}
		ct, err := clip.ReadContents(filepath.Join(cfg.Out, m.Name, "final", "open_clip_model.safetensors"))
		if err != nil || !ct.Vision || ct.Metadata[clip.MetaImageFingerprint] != fps[m.Cache] {
			t.Errorf("%s: final/ %+v, %v: want the full model with its cache's tower", m.Name, ct, err)
		}
	}

	tw := sum.Towers
	if tw == nil || len(tw.Towers) != 2 {
		t.Fatalf("tower comparison %+v", tw)
	}
	for i, x := range tw.Towers {
		if x.Cache != caches[i] || x.Members != 2 || x.Finished != 2 || !strings.HasPrefix(x.Best, "cache-tower-"+string(rune('a'+i))) {
			t.Errorf("tower %d: %+v", i, x)
		}
		if x.Eval == nil {
			t.Fatalf("tower %d: no evaluation (%s)", i, x.EvalError)
		}
		if len(x.Eval.Ranks) != len(inat.Ranks) || len(x.Eval.Supercategories) != 2 || x.Eval.Images != 18 {
			t.Errorf("tower %d: evaluation %d ranks, %d supercategories, %d images", i, len(x.Eval.Ranks), len(x.Eval.Supercategories), x.Eval.Images)
		}
		// The best member's evaluation scores its val cache as its last epoch did.
		var best Row
		for _, r := range sum.Rows {
			if r.Member.Name == x.Best {
				best = r
			}
		}
		if x.Eval.Top1 != best.Top1 || x.Top1 != best.Top1 {
			t.Errorf("tower %d: evaluated top-1 %v, the member's last epoch %v", i, x.Eval.Top1, best.Top1)
		}
	}

	md, _ := os.ReadFile(filepath.Join(cfg.Out, SummaryMarkdown))
	for _, w := range []string{"| cache ", "| classes ", "## Axis values", "| tower-a ", inat.DefaultTemplate,
		"## Image towers", "Per taxonomic rank", "| genus", "Per supercategory", "| Plants", PlotTowerRanks} {
		if !strings.Contains(string(md), w) {
			t.Errorf("summary.md lacks %q:\n%s", w, md)
		}
	}
	if strings.Contains(string(md), "| warm-up ") {
		t.Errorf("summary.md has a column for the warm-up, which does not vary:\n%s", md)
	}
	pngs := 0
	for _, f := range sum.Files {
		if strings.HasSuffix(f, ".png") {
			pngs++
			fh, _ := os.Open(f)
			if _, err := png.Decode(fh); err != nil {
				t.Errorf("%s: %v", f, err)
			}
			fh.Close()
		}
	}
	if pngs != 7 {
		t.Errorf("%d plots, want 7 (six overlays and the towers' ranks)", pngs)
	}
	var js Summary
	b, _ := os.ReadFile(filepath.Join(cfg.Out, SummaryJSON))
	if err := json.Unmarshal(b, &js); err != nil || js.Towers == nil || js.Rows[0].Member.Axes["cache"] == "" {
		t.Fatalf("summary.json: %v", err)
	}
	// A second summary reuses the evaluations (eval.json newer than final/).
	before, _ := os.Stat(filepath.Join(tw.Towers[0].EvalDir, "eval.json"))
	if _, err := Summarize(cfg.Out); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(filepath.Join(tw.Towers[0].EvalDir, "eval.json"))
	if !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("summarize re-ran an evaluation it had")
	}
}

// TestSweepRefusesOtherEmbedDim: a tower of another width than a pretrained
// text tower's embed_dim stops the sweep before its first member trains
// (tune's rule, tune.FitTextModel: a random-init text tower would take the
// cache's dim; a pretrained one must project to it).
func TestSweepRefusesOtherEmbedDim(t *testing.T) {
	dir := t.TempDir()
	classes := towerClasses()
	for i := range classes {
		classes[i].Caption = classes[i].Name
	}
	cls := filepath.Join(dir, "classes.json")
	if err := inat.WriteClasses(cls, classes); err != nil {
		t.Fatal(err)
	}
	a := filepath.Join(dir, "a")
	writeTowerCache(t, a, 7, classes)
	b := filepath.Join(dir, "b")
	cb, err := store.Create(b, store.Manifest{Fingerprint: "sha256:wide", Model: "wide", Dim: 32, DType: store.Float32, Views: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The manifest comes with the first committed part: commit an empty one.
	if pw, err := cb.NewPart("part-train", "train", "train.tar"); err != nil {
		t.Fatal(err)
	} else if _, err := pw.Commit(0, 1, nil); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model.json")
	os.WriteFile(model, []byte(towerModel), 0o644)
	mc, err := clip.ParseConfig([]byte(towerModel))
	if err != nil {
		t.Fatal(err)
	}
	pretrained := filepath.Join(dir, "pretrained", "open_clip_model.safetensors")
	os.MkdirAll(filepath.Dir(pretrained), 0o755)
	tt := clip.NewRandomTextTower(backend.NewCPU(), mc, 3)
	if err := clip.SaveTextTower(pretrained, mc, tt, 4.6); err != nil {
		t.Fatal(err)
	}
	tt.Free()
	base := tune.DefaultConfig()
	base.Model, base.Classes, base.Epochs, base.BatchSize, base.Weights = model, cls, 1, 8, pretrained
	cfg := Config{Base: base, Out: filepath.Join(dir, "sweep"), Member: -1, Quiet: true, Grid: Grid{Cache: []string{a, b}, Warmup: []int{1}}}
	_, _, err = Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "32 wide") || !strings.Contains(err.Error(), "embed_dim 16") || !strings.Contains(err.Error(), "cache-b") {
		t.Fatalf("err %v, want a refusal naming the 32-d cache's member", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, "cache-a")); err == nil {
		t.Error("a member trained before the refusal")
	}
	// A random-init text tower meets both widths.
	base.Weights = ""
	if err := checkDims(base, Members(base, cfg.Grid), cfg.Out); err != nil {
		t.Errorf("random-init text tower over 16- and 32-d caches: %v", err)
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

// TestDescribeModel: a manifest's model line of each family comes out as the
// tower's shape, weights and pooling; anything else is shortened as it is.
func TestDescribeModel(t *testing.T) {
	line := func(spec registry.Spec) string {
		c, err := registry.Resolve(spec.Model)
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.Describe(spec.Weights, spec.Pool)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for spec, want := range map[registry.Spec]string{
		{Model: "clip-tiny", Weights: "random:7"}:                     "ViT 32 px /8, width 64, 2 layers, weights=random:7",
		{Model: "dinov2-tiny", Weights: "random:7", Pool: "cls+mean"}: "DINOv2 56 px /14, width 64, 2 blocks, 4 registers, weights=random:7, pool=cls+mean",
		{Model: "swin-tiny", Weights: "/w/swin_t.safetensors"}:        "Swin 64 px /4, width 32, depths 2-2, window 4, weights=swin_t.safetensors, pool=mean",
	} {
		if got := describeModel(line(spec)); got != want {
			t.Errorf("%s: %q, want %q", spec.Model, got, want)
		}
	}
	if got := describeModel("synthetic rows"); got != "synthetic rows" {
		t.Errorf("a plain line: %q", got)
	}
}
