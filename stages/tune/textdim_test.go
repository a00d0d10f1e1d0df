package tune

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/safetensors"
	registry "github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/store"
)

// wideModel is tinyModel with embed_dim 24: the text model of another tower
// than the test world's (whose cache is 16 wide).
var wideModel = strings.Replace(tinyModel, `"embed_dim": 16`, `"embed_dim": 24`, 1)

func writeWideModel(t *testing.T, dir string) (string, clip.Config) {
	t.Helper()
	path := filepath.Join(dir, "wide.json")
	if err := os.WriteFile(path, []byte(wideModel), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := clip.LoadConfig(path)
	if err != nil || m.EmbedDim != 24 {
		t.Fatalf("wide model: %v, embed_dim %d", err, m.EmbedDim)
	}
	return path, m
}

// writePretrained saves a random text tower of m as if pretrained: a text
// tower file with its open_clip_config.json.
func writePretrained(t *testing.T, dir string, m clip.Config) string {
	t.Helper()
	path := filepath.Join(dir, "pretrained", "open_clip_model.safetensors")
	os.MkdirAll(filepath.Dir(path), 0o755)
	tt := clip.NewRandomTextTower(backend.NewCPU(), m, 99)
	defer tt.Free()
	if err := clip.SaveTextTower(path, m, tt, 4.2); err != nil {
		t.Fatal(err)
	}
	return path
}

func finalTensor(t *testing.T, final, name string) ([]float32, []int) {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(final, modelFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, shape, err := f.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return d, shape
}

// TestRandomTextTakesCacheDim: a random-init text tower whose config says
// embed_dim 24 trains against a 16-wide cache as the tower of embed_dim 16:
// bit for bit the run of the matching config, and its final/ is a tower of
// dim 16 (config and projection).
func TestRandomTextTakesCacheDim(t *testing.T) {
	w := newTestWorld(t)
	wide, _ := writeWideModel(t, w.dir)
	cfg := w.config(filepath.Join(w.dir, "wide"))
	cfg.Model, cfg.Epochs = wide, 1
	var log strings.Builder
	cfg.Quiet, cfg.Log = false, &log
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "embeds to the cache's dim 16") || !strings.Contains(log.String(), "embed_dim 24") {
		t.Errorf("log does not say the dim changed:\n%s", log.String())
	}
	m, err := clip.LoadConfig(filepath.Join(res.Final, clip.ConfigFileName))
	if err != nil || m.EmbedDim != 16 {
		t.Fatalf("final config: %v, embed_dim %d", err, m.EmbedDim)
	}
	got, shape := finalTensor(t, res.Final, "text_projection")
	if !slices.Equal(shape, []int{8, 16}) {
		t.Errorf("final text_projection %v, want [8 16] (width × the cache's dim)", shape)
	}

	ref := w.config(filepath.Join(w.dir, "matching"))
	ref.Epochs = 1
	rres, err := Run(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := finalTensor(t, rres.Final, "text_projection")
	if !slices.Equal(got, want) || res.Top1 != rres.Top1 {
		t.Errorf("the fitted run differs from the run with embed_dim 16 (top-1 %.4f vs %.4f)", res.Top1, rres.Top1)
	}
}

// TestPretrainedTextDim: a pretrained text tower of another dim is refused,
// naming both dims and the ways out; with NewProjection it trains, from the
// pretrained transformer with a fresh projection to the cache's dim.
func TestPretrainedTextDim(t *testing.T) {
	w := newTestWorld(t)
	wide, wm := writeWideModel(t, w.dir)
	pre := writePretrained(t, w.dir, wm)
	cfg := w.config(filepath.Join(w.dir, "pre"))
	cfg.Model, cfg.Weights, cfg.Epochs = wide, pre, 1
	_, err := Run(context.Background(), cfg)
	for _, want := range []string{"16 wide", "embed_dim 24", "--new-projection", "--image-head", pre} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("pretrained 24 over a 16 cache: %v, want it to mention %q", err, want)
		}
	}
	if _, err := os.Stat(cfg.Out); !os.IsNotExist(err) {
		t.Errorf("a refused run made %s (%v)", cfg.Out, err)
	}

	cfg.NewProjection = true
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, shape := finalTensor(t, res.Final, "text_projection"); !slices.Equal(shape, []int{8, 16}) {
		t.Errorf("final text_projection %v, want [8 16]", shape)
	}

	random := w.config(filepath.Join(w.dir, "bad"))
	random.NewProjection = true
	if err := random.Validate(); err == nil || !strings.Contains(err.Error(), "--new-projection needs pretrained --weights") {
		t.Errorf("--new-projection on a random init: %v", err)
	}
}

// TestWithNewProjection: the new tower holds every pretrained tensor but
// text_projection, which is the random init's at the new dim.
func TestWithNewProjection(t *testing.T) {
	dir := t.TempDir()
	be := backend.NewCPU()
	_, wm := writeWideModel(t, dir)
	pre := writePretrained(t, dir, wm)
	m := wm
	m.EmbedDim = 16
	tt, err := withNewProjection(be, wm, m, pre, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer tt.Free()
	old, err := clip.LoadTextTower(be, wm, pre)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Free()
	fresh := clip.NewRandomTextTower(be, m, 5)
	defer fresh.Free()
	vals := func(tt *clip.TextTower) map[string][]float32 {
		out := map[string][]float32{}
		for _, p := range tt.Params() {
			out[p.Name] = be.ToFloat32(p.Value, nil)
		}
		return out
	}
	got, was, init := vals(tt), vals(old), vals(fresh)
	if len(got) != len(was) {
		t.Fatalf("%d tensors, the pretrained tower %d", len(got), len(was))
	}
	for name, v := range got {
		want := was[name]
		if name == "text_projection" {
			want = init[name]
			if len(v) != 16*8 {
				t.Errorf("text_projection holds %d values, want 16×8", len(v))
			}
		}
		if !slices.Equal(v, want) {
			t.Errorf("%s: not the expected tensor", name)
		}
	}
}

// TestOtherTowerFinalTextOnly: over a cache of a DINOv2 tower (of another
// width than the text model's embed_dim) a random-init text tower trains at
// the cache's dim and final/ holds it alone, saying why: no OpenCLIP model
// holds a DINOv2 image tower.
func TestOtherTowerFinalTextOnly(t *testing.T) {
	w := newTestWorld(t)
	tc, err := registry.Resolve("dinov2-tiny")
	if err != nil {
		t.Fatal(err)
	}
	fp, err := tc.Fingerprint("random:1", "cls")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{w.cache, w.val} {
		path := filepath.Join(dir, "manifest.json")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m store.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		m.Fingerprint = fp
		m.Tower = &store.TowerSource{Family: registry.DINOv2, Config: tc.JSON(), Weights: "random:1", Pool: "cls"}
		if b, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(path, b, 0o644)
		restampMarkers(t, dir, m.Fingerprint, m.Tower)
	}
	wide, _ := writeWideModel(t, w.dir)
	cfg := w.config(filepath.Join(w.dir, "dino"))
	cfg.Model, cfg.Epochs = wide, 1
	var log strings.Builder
	cfg.Quiet, cfg.Log = false, &log
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "final/ holds the text tower alone") || !strings.Contains(log.String(), "(dinov2)") {
		t.Errorf("log does not say why final/ is the text tower alone:\n%s", log.String())
	}
	c, err := clip.ReadContents(filepath.Join(res.Final, modelFile))
	if err != nil || c.Vision {
		t.Errorf("final/ holds an image tower (%v)", err)
	}
	if _, shape := finalTensor(t, res.Final, "text_projection"); !slices.Equal(shape, []int{8, 16}) {
		t.Errorf("final text_projection %v, want [8 16]", shape)
	}
}
