package extract

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/testutil"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/store"
)

// TestManifestTower: the manifest records where the tower came from (config
// and weights: an absolute path, or random:SEED), enough for tune to load or
// regenerate it; the recorded tower's fingerprint is the cache's.
func TestManifestTower(t *testing.T) {
	weights := testutil.Testdata(t, "clip-tiny/weights_openclip.safetensors")
	for _, tc := range []struct {
		name, weights, want string
	}{
		{"random", "", clip.RandomWeights(7)},
		{"file", weights, weights},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(makeShards(t, dir, 1, 3), filepath.Join(dir, "cache"))
			cfg.Weights = tc.weights
			if tc.weights != "" {
				// A relative path is recorded absolute: tune runs elsewhere.
				wd, err := os.Getwd()
				if err != nil {
					t.Fatal(err)
				}
				rel, err := filepath.Rel(wd, tc.weights)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Weights = rel
			}
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			m, err := store.ReadManifest(cfg.Cache)
			if err != nil {
				t.Fatal(err)
			}
			if m.Tower == nil {
				t.Fatal("manifest has no tower record")
			}
			if m.Tower.Weights != tc.want {
				t.Errorf("tower weights %q, want %q", m.Tower.Weights, tc.want)
			}
			if m.Tower.Family != tower.CLIP || m.Tower.Pool != "cls" {
				t.Errorf("tower family %q pool %q", m.Tower.Family, m.Tower.Pool)
			}
			if _, err := clip.ParseConfig(m.Tower.Config); err != nil {
				t.Fatalf("tower config: %v", err)
			}
			fp := recordedFingerprint(t, m.Tower)
			if fp != m.Fingerprint || fp != res.Fingerprint {
				t.Errorf("the recorded tower's fingerprint %s, the cache's %s", fp, m.Fingerprint)
			}
		})
	}
}

// recordedFingerprint is the fingerprint of the tower a manifest records,
// through the registry.
func recordedFingerprint(t *testing.T, src *store.TowerSource) string {
	t.Helper()
	tc, err := tower.ParseConfig(src.Family, src.Config)
	if err != nil {
		t.Fatalf("tower config: %v", err)
	}
	fp, err := tc.Fingerprint(src.Weights, src.Pool)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// TestManifestTowerOtherFamily: a DINOv2 tower is recorded with its family
// and pooling, and the record gives the cache's fingerprint back.
func TestManifestTowerOtherFamily(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(makeShards(t, dir, 1, 3), filepath.Join(dir, "cache"))
	cfg.ModelConfig, cfg.Pool = "dinov2-tiny", "cls+mean"
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	m, err := store.ReadManifest(cfg.Cache)
	if err != nil {
		t.Fatal(err)
	}
	if m.Tower == nil || m.Tower.Family != tower.DINOv2 || m.Tower.Pool != "cls+mean" || m.Tower.Weights != "random:7" {
		t.Fatalf("tower record %+v", m.Tower)
	}
	if fp := recordedFingerprint(t, m.Tower); fp != m.Fingerprint {
		t.Errorf("the recorded tower's fingerprint %s, the cache's %s", fp, m.Fingerprint)
	}
}
