package extract

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/testutil"
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
			mc, err := clip.ParseConfig(m.Tower.Config)
			if err != nil {
				t.Fatalf("tower config: %v", err)
			}
			fp, err := Fingerprint(mc, m.Tower.Weights, 0)
			if err != nil {
				t.Fatal(err)
			}
			if fp != m.Fingerprint || fp != res.Fingerprint {
				t.Errorf("the recorded tower's fingerprint %s, the cache's %s", fp, m.Fingerprint)
			}
		})
	}
}
