package tune

import (
	"bytes"
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
	"github.com/litcache/litcache/store"
)

// setTower rewrites the tower record (and the fingerprint it gives) of the
// cache in dir, as an extraction with that tower would have written it.
func setTower(t *testing.T, dir string, tower *store.TowerSource) {
	t.Helper()
	path := filepath.Join(dir, "manifest.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m store.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m.Tower = tower
	if tower != nil {
		cfg, err := clip.ParseConfig(tower.Config)
		if err != nil {
			t.Fatal(err)
		}
		if m.Fingerprint, err = registryFingerprint(cfg, tower.Weights); err != nil {
			t.Fatal(err)
		}
	}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	restampMarkers(t, dir, m.Fingerprint, tower)
}

// restampMarkers gives every done/ marker of the cache in dir the tower and
// fingerprint a rewritten manifest has: each marker repeats what its part
// was made with, and readers refuse a manifest its markers contradict.
func restampMarkers(t *testing.T, dir, fingerprint string, tower *store.TowerSource) {
	t.Helper()
	markers, _ := filepath.Glob(filepath.Join(dir, "done", "*.json"))
	for _, p := range markers {
		var mk map[string]any
		b, err := os.ReadFile(p)
		if err != nil || json.Unmarshal(b, &mk) != nil {
			t.Fatalf("marker %s: %v", p, err)
		}
		mk["fingerprint"], mk["tower"] = fingerprint, tower
		if b, err = json.Marshal(mk); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tensorsOf reads every tensor of a safetensors file whose name passes keep.
func tensorsOf(t *testing.T, path string, keep func(string) bool) map[string][]byte {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	for _, n := range f.Names() {
		if keep(n) {
			b, _, err := f.Bytes(n)
			if err != nil {
				t.Fatal(err)
			}
			out[n] = bytes.Clone(b)
		}
	}
	return out
}

func isVisual(n string) bool { return strings.HasPrefix(n, "visual.") }

// sameTensors requires got to hold exactly want's tensors, byte for byte.
func sameTensors(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: no reference tensors", what)
	}
	for n, w := range want {
		g, ok := got[n]
		if !ok {
			t.Errorf("%s: %s missing", what, n)
		} else if !bytes.Equal(g, w) {
			t.Errorf("%s: %s differs", what, n)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s: unexpected %s", what, n)
		}
	}
}

// TestFinalFullModel: final/ holds a full OpenCLIP model that loads through
// the OpenCLIP-name importer with every tensor of both towers and
// logit_scale required and none left over (clip.LoadModel is strict), whose
// image tower is the cache's — regenerated from its random seed, or copied
// from its weights file (HF names, converted) — and whose text tower is the
// tuned one of the last checkpoint.
func TestFinalFullModel(t *testing.T) {
	w := newTestWorld(t)
	tiny, err := clip.ParseConfig([]byte(tinyModel))
	if err != nil {
		t.Fatal(err)
	}
	be := backend.NewCPU()
	// The reference image towers: the random one extract draws for seed
	// worldImageSeed, and a weights file with HF names from another seed.
	refDir := t.TempDir()
	randomRef := filepath.Join(refDir, "random.safetensors")
	m := clip.NewRandomModel(be, tiny, worldImageSeed)
	if err := clip.SaveModel(randomRef, m, clip.OpenCLIP); err != nil {
		t.Fatal(err)
	}
	hfFile := filepath.Join(refDir, "hf", "model.safetensors")
	os.MkdirAll(filepath.Dir(hfFile), 0o755)
	m2 := clip.NewRandomModel(be, tiny, 99)
	if err := clip.SaveModel(hfFile, m2, clip.HF); err != nil {
		t.Fatal(err)
	}
	fileRef := filepath.Join(refDir, "file.safetensors")
	if err := clip.SaveModel(fileRef, m2, clip.OpenCLIP); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		weights string // the cache's tower; "" keeps the world's random one
		ref     string
	}{
		{"random tower regenerated", "", randomRef},
		{"tower copied from an HF-named file", hfFile, fileRef},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.weights != "" {
				setTower(t, w.cache, &store.TowerSource{Config: []byte(tinyModel), Weights: tc.weights})
				defer setTower(t, w.cache, &store.TowerSource{Config: []byte(tinyModel), Weights: clip.RandomWeights(worldImageSeed)})
			}
			cfg := w.config(filepath.Join(w.dir, "full-"+strings.Fields(tc.name)[1]))
			cfg.ValCache = "" // the val cache's tower is not read; leave it out of the picture
			cfg.Epochs = 1
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !res.FullModel {
				t.Fatalf("result says final/ is text-only: %+v", res)
			}
			path := filepath.Join(res.Final, modelFile)
			// Strict: every tensor of both towers and logit_scale, none extra.
			fc, err := clip.LoadConfig(filepath.Join(res.Final, clip.ConfigFileName))
			if err != nil {
				t.Fatal(err)
			}
			if fc.Vision != tiny.Vision || fc.Text != tiny.Text || fc.EmbedDim != tiny.EmbedDim || fc.QuickGELU != tiny.QuickGELU {
				t.Fatalf("open_clip_config.json: %+v, want %+v", fc, tiny)
			}
			loaded, err := clip.LoadModel(be, fc, path)
			if err != nil {
				t.Fatalf("strict load: %v", err)
			}
			loaded.Free()
			sameTensors(t, "image tower", tensorsOf(t, path, isVisual), tensorsOf(t, tc.ref, isVisual))
			ckpt, err := LatestCheckpoint(cfg.Out)
			if err != nil || ckpt == "" {
				t.Fatalf("checkpoint %q: %v", ckpt, err)
			}
			notVisual := func(n string) bool { return !isVisual(n) }
			sameTensors(t, "text tower and logit_scale", tensorsOf(t, path, notVisual), tensorsOf(t, filepath.Join(ckpt, modelFile), notVisual))
			ct, err := clip.ReadContents(path)
			if err != nil {
				t.Fatal(err)
			}
			mf, _ := store.ReadManifest(w.cache)
			if ct.Metadata[clip.MetaImageFingerprint] != mf.Fingerprint {
				t.Errorf("metadata image fingerprint %q, the cache's %q", ct.Metadata[clip.MetaImageFingerprint], mf.Fingerprint)
			}
		})
	}
}

// TestFinalTextOnly: --text-only (and --image-head, which implies it) keeps
// the old form, the text tower alone; without a tower record or with its
// weights gone, the run stops before training and names --text-only.
func TestFinalTextOnly(t *testing.T) {
	w := newTestWorld(t)
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"text-only", func(c *Config) { c.TextOnly = true }},
		{"image head", func(c *Config) { c.ImageHead = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := w.config(filepath.Join(w.dir, strings.ReplaceAll(tc.name, " ", "-")))
			cfg.Epochs = 1
			tc.edit(&cfg)
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			ct, err := clip.ReadContents(filepath.Join(res.Final, modelFile))
			if err != nil {
				t.Fatal(err)
			}
			if res.FullModel || ct.Vision || !ct.Text || !ct.LogitScale {
				t.Fatalf("full %v, contents %+v: want the text tower and logit_scale alone", res.FullModel, ct)
			}
		})
	}

	tiny, _ := clip.ParseConfig([]byte(tinyModel))
	file := filepath.Join(w.dir, "tower.safetensors")
	saveTower := func(seed int64) {
		if err := clip.SaveModel(file, clip.NewRandomModel(backend.NewCPU(), tiny, seed), clip.OpenCLIP); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		prepare func() // sets the cache's tower record
		want    string
	}{
		{"no record", func() { setTower(t, w.cache, nil) }, "does not record its image tower"},
		{"weights gone", func() {
			saveTower(1) // extraction saw it, tune does not
			setTower(t, w.cache, &store.TowerSource{Config: []byte(tinyModel), Weights: file})
			os.Remove(file)
		}, "tower.safetensors"},
		{"weights changed", func() {
			saveTower(1)
			setTower(t, w.cache, &store.TowerSource{Config: []byte(tinyModel), Weights: file})
			saveTower(2)
		}, "changed since extraction"},
		{"val cache of another tower", func() {
			setTower(t, w.val, &store.TowerSource{Config: []byte(tinyModel), Weights: clip.RandomWeights(worldImageSeed + 1)})
		}, "val cache"},
		{"other activation", func() {
			setTower(t, w.cache, &store.TowerSource{Config: []byte(strings.Replace(tinyModel, `"quick_gelu": true`, `"quick_gelu": false`, 1)),
				Weights: clip.RandomWeights(1)})
		}, "quick_gelu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.prepare()
			defer setTower(t, w.cache, &store.TowerSource{Config: []byte(tinyModel), Weights: clip.RandomWeights(worldImageSeed)})
			defer setTower(t, w.val, &store.TowerSource{Config: []byte(tinyModel), Weights: clip.RandomWeights(worldImageSeed)})
			cfg := w.config(filepath.Join(w.dir, "refused"))
			needs := "--text-only"
			if tc.want == "val cache" {
				needs = "same tower"
			} else {
				cfg.ValCache = ""
			}
			_, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), needs) {
				t.Fatalf("err %v, want one naming %q and %q", err, tc.want, needs)
			}
			if _, err := os.Stat(filepath.Join(cfg.Out, "metrics.jsonl")); err == nil {
				t.Errorf("the refused run trained")
			}
		})
	}
}

// TestOpenFinalBothForms: a full final/ and a text-only one of the same run
// load (Final.LoadModel) into the same model, the text-only one taking its
// image tower from the training cache's record.
func TestOpenFinalBothForms(t *testing.T) {
	w := newTestWorld(t)
	be := backend.NewCPU()
	var models []*clip.Model
	var finals []Final
	for _, textOnly := range []bool{false, true} {
		cfg := w.config(filepath.Join(w.dir, map[bool]string{false: "full", true: "text"}[textOnly]))
		cfg.Epochs, cfg.ValCache, cfg.TextOnly = 1, "", textOnly
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		f, err := OpenFinal(cfg.Out)
		if err != nil {
			t.Fatal(err)
		}
		if f.Full == textOnly || (!textOnly && f.Image != nil) || (textOnly && f.Image == nil) {
			t.Fatalf("text-only %v: %+v", textOnly, f)
		}
		m, err := f.LoadModel(be)
		if err != nil {
			t.Fatal(err)
		}
		models, finals = append(models, m), append(finals, f)
	}
	if finals[0].ImageFingerprint == "" || finals[0].ImageFingerprint != finals[1].ImageFingerprint {
		t.Errorf("image fingerprints %q and %q", finals[0].ImageFingerprint, finals[1].ImageFingerprint)
	}
	a, b := models[0], models[1]
	if a.Config != b.Config || a.LogitScale != b.LogitScale {
		t.Fatalf("configs %+v / %+v, logit scales %v / %v", a.Config, b.Config, a.LogitScale, b.LogitScale)
	}
	tiny, _ := clip.ParseConfig([]byte(tinyModel))
	S := tiny.Vision.ImageSize
	pixels := make([]float32, 2*3*S*S)
	for i := range pixels {
		pixels[i] = float32(i%17)/8 - 1
	}
	if !slices.Equal(a.Vision.Encode(pixels, 2), b.Vision.Encode(pixels, 2)) {
		t.Error("the image towers of the two forms differ")
	}
	ids := make([]int32, 2*tiny.Text.ContextLength)
	ids[0], ids[1], ids[2] = 49406, 320, 49407
	ids[16], ids[17], ids[18] = 49406, 1000, 49407
	if !slices.Equal(a.Text.Encode(ids, 2, tiny.Text.ContextLength), b.Text.Encode(ids, 2, tiny.Text.ContextLength)) {
		t.Error("the text towers of the two forms differ")
	}
	if _, err := OpenFinal(w.dir); err == nil {
		t.Error("a folder without final/ opened")
	}
}
