package extract

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/store"
)

// TestPoolIsInTheFingerprint: DINOv2's pooling decides the cache's dim and
// fingerprint (the registry's), and a cache made with one pooling refuses a
// run with another instead of mixing their rows.
func TestPoolIsInTheFingerprint(t *testing.T) {
	dir := t.TempDir()
	shards := makeShards(t, dir, 1, 4)
	manifest := func(cache, pool string) store.Manifest {
		t.Helper()
		cfg := testConfig(shards, filepath.Join(dir, cache))
		cfg.ModelConfig, cfg.Pool, cfg.Views = "dinov2-tiny", pool, 1
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		m, err := store.ReadManifest(cfg.Cache)
		if err != nil {
			t.Fatal(err)
		}
		want, err := tower.Fingerprint(tower.Spec{Model: "dinov2-tiny", Weights: "random:7", Pool: pool})
		if err != nil || m.Fingerprint != want || res.Fingerprint != want {
			t.Errorf("pool %q: manifest fingerprint %s, result %s, registry %s (%v)", pool, m.Fingerprint, res.Fingerprint, want, err)
		}
		return m
	}
	cls, both, def := manifest("cls", "cls"), manifest("both", "cls+mean"), manifest("default", "")
	if cls.Fingerprint == both.Fingerprint {
		t.Errorf("cls and cls+mean share fingerprint %s", cls.Fingerprint)
	}
	if def.Fingerprint != cls.Fingerprint {
		t.Errorf("the default pooling (cls) has fingerprint %s, --pool cls %s", def.Fingerprint, cls.Fingerprint)
	}
	if cls.Dim != 64 || both.Dim != 128 {
		t.Errorf("dims %d (cls), %d (cls+mean); want 64, 128", cls.Dim, both.Dim)
	}
	if !strings.Contains(both.Model, "pool=cls+mean") || !strings.HasPrefix(both.Model, "dinov2 ") {
		t.Errorf("manifest model line %q", both.Model)
	}

	cfg := testConfig(shards, filepath.Join(dir, "cls"))
	cfg.ModelConfig, cfg.Pool, cfg.Views = "dinov2-tiny", "mean", 1
	if _, err := Run(context.Background(), cfg); !errors.Is(err, store.ErrFingerprint) {
		t.Errorf("--pool mean into a cls cache: %v, want a fingerprint refusal", err)
	}
}

// TestRefusedPool: a pooling the family does not offer stops the run before
// the cache exists, naming the choices.
func TestRefusedPool(t *testing.T) {
	dir := t.TempDir()
	shards := makeShards(t, dir, 1, 2)
	for model, want := range map[string]string{"swin-tiny": "mean", "clip-tiny": "cls", "dinov2-tiny": "cls or mean or cls+mean"} {
		cfg := testConfig(shards, filepath.Join(dir, model))
		cfg.ModelConfig, cfg.Pool = model, "max"
		_, err := Run(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"max"`) {
			t.Errorf("%s --pool max: %v, want an error naming %s", model, err, want)
		}
		if _, err := os.Stat(cfg.Cache); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a refused pooling left %s (%v)", model, cfg.Cache, err)
		}
	}
	cfg := testConfig(shards, filepath.Join(dir, "swin-cls"))
	cfg.ModelConfig, cfg.Pool = "swin-tiny", "cls"
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "swin pools mean") {
		t.Errorf("swin --pool cls: %v", err)
	}
}
