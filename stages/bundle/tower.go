package bundle

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/stages/tune"
	"github.com/litcache/litcache/store"
)

// Tower is a bundle's locked image tower: a tower of the registry
// (internal/tower: CLIP, DINOv2, Swin), whatever its family, with the
// preprocessing field photos need. The bundle stores it as tower.Saved and
// rebuilds it with tower.RebuildFrom; nothing here asks which family it is.
type Tower struct {
	t   *tower.Tower
	pre imageproc.Preprocessor
}

// TowerOf makes a registry tower a bundle's; freeing the Tower frees t.
func TowerOf(t *tower.Tower) *Tower {
	return &Tower{t: t, pre: fieldPreprocessor(t.Preprocessor())}
}

// fieldPreprocessor is the tower's eval transform with EXIF orientation
// honoured. Field photos, phone photos above all, are stored sideways with an
// EXIF orientation; the cache's images were decoded without it (as PIL
// does), but a photo must be upright to be recognised.
func fieldPreprocessor(p imageproc.Preprocessor) imageproc.Preprocessor {
	p.ApplyEXIF = true
	return p
}

// Family is the tower's family name (metadata "tower").
func (t *Tower) Family() string { return t.t.Family() }

// Preprocessor is the transform of a photo into the tower's input.
func (t *Tower) Preprocessor() imageproc.Preprocessor { return t.pre }

// Dim is the width D of Encode's rows.
func (t *Tower) Dim() int { return t.t.Dim() }

// Encode runs pixels (n,3,S,S), preprocessed, through the tower and returns
// the embeddings (n,D), not normalised. Safe for concurrent use.
func (t *Tower) Encode(pixels []float32, n int) []float32 { return t.t.Encode(pixels, n) }

// Fingerprint is the fingerprint of the caches the tower makes.
func (t *Tower) Fingerprint() string { return t.t.Fingerprint() }

// Free releases the weights.
func (t *Tower) Free() { t.t.Free() }

// DefaultBatch is the batch size predict and serve give the tower on be
// when none is set: 16 on the CPU, 64 on a GPU, which needs large batches
// to be busy. On the CPU no size won beyond the noise of the shared 2-core
// machine: BenchmarkViTB16Batch, sizes interleaved, ranked them differently
// in each of two runs (1/2/4/8/16: 2.7/4.6/3.0/4.3/6.3 img/s, then
// 2.2/2.8/1.9/1.0/2.1); 16 packs the weights (re-packed every call) least often.
func DefaultBatch(be backend.Backend) int {
	if _, cpu := be.(*backend.CPU); cpu || be == nil {
		return 16
	}
	return 64
}

// imageTower is the image tower a bundle is made with, where it came from,
// and the fingerprint to store with it.
type imageTower struct {
	t *tower.Tower
	// fingerprint is the cache fingerprint the tower's embeddings carry: the
	// registry's for a tower from --model/--weights or a cache's record;
	// final/'s recorded one for its own tower (the file's bytes differ from
	// the weights the cache was extracted with, so its own hash means nothing).
	fingerprint    string
	model, weights string // for the metadata's source
}

// openTower builds the bundle's image tower on be, from the first of:
//   - --model and --weights (and --pool), through the registry;
//   - final/'s own image tower when final/ is a full model (tune's default);
//   - the tower the run's training cache records (tune --text-only, and
//     every run on a DINOv2 or Swin cache, whose final/ holds the text tower alone).
func openTower(be backend.Backend, cfg Config, fin tune.Final, cache runCache) (imageTower, error) {
	if cfg.Model != "" || cfg.Weights != "" {
		if cfg.Model == "" || cfg.Weights == "" {
			return imageTower{}, fmt.Errorf("bundle: give the image tower as --model CONFIG with --weights FILE|random:SEED, or neither (the run's own tower)")
		}
		t, err := tower.Load(be, tower.Spec{Model: cfg.Model, Weights: cfg.Weights, Pool: cfg.Pool})
		if err != nil {
			return imageTower{}, fmt.Errorf("bundle: --model %s --weights %s: %w", cfg.Model, cfg.Weights, err)
		}
		return imageTower{t: t, fingerprint: t.Fingerprint(), model: cfg.Model, weights: cfg.Weights}, nil
	}
	if cfg.Pool != "" {
		return imageTower{}, fmt.Errorf("bundle: --pool goes with --model and --weights (the run's own tower has its pooling)")
	}
	if fin.Full && fin.ImageFingerprint != "" {
		// The recorded fingerprint is the one kept: hashing the whole file
		// (1.7 GB for ViT-L/14) for another that would be dropped is skipped.
		model := filepath.Join(fin.Dir, clip.ConfigFileName)
		tc, err := tower.Resolve(model)
		var t *tower.Tower
		if err == nil {
			t, err = tower.LoadWithFingerprint(be, tc, fin.Weights, "", fin.ImageFingerprint)
		}
		if err != nil {
			return imageTower{}, fmt.Errorf("bundle: the image tower of %s: %w", fin.Weights, err)
		}
		return imageTower{t: t, fingerprint: fin.ImageFingerprint, model: model, weights: fin.Weights}, nil
	}
	return recordedTower(be, cache)
}

// recordedTower loads the tower a cache's manifest records and checks that
// it still makes the cache's fingerprint (a weights file replaced since
// extraction is refused).
func recordedTower(be backend.Backend, cache runCache) (imageTower, error) {
	if cache.err != nil {
		return imageTower{}, fmt.Errorf("bundle: the run's image tower: %w; or give it with --model and --weights", cache.err)
	}
	src := cache.manifest.Tower
	if src == nil {
		return imageTower{}, fmt.Errorf("bundle: cache %s does not record its image tower (made before litcache recorded it): give it with --model and --weights", cache.path)
	}
	family := src.Family
	if family == "" {
		family = tower.CLIP // records written before other families had none
	}
	tc, err := tower.ParseConfig(family, src.Config)
	if err != nil {
		return imageTower{}, fmt.Errorf("bundle: cache %s: its recorded tower: %w", cache.path, err)
	}
	t, err := tower.LoadConfig(be, tc, src.Weights, src.Pool)
	if err != nil {
		return imageTower{}, fmt.Errorf("bundle: cache %s: its recorded tower (%s): %w; or give it with --model and --weights", cache.path, src.Weights, err)
	}
	if t.Fingerprint() != cache.manifest.Fingerprint {
		t.Free()
		return imageTower{}, fmt.Errorf("bundle: cache %s was made by image tower %s, but its recorded weights %s now give %s (changed since extraction?)",
			cache.path, cache.manifest.Fingerprint, src.Weights, t.Fingerprint())
	}
	return imageTower{t: t, fingerprint: t.Fingerprint(), model: family + " (the cache's recorded config)", weights: src.Weights}, nil
}

// runCache is the run's training cache as the bundle sees it: its manifest,
// or why it could not be read.
type runCache struct {
	path     string
	manifest store.Manifest
	err      error
}

// openRunCache reads the manifest of the run's training cache: cfg.Cache
// when given (the cache has moved), else the path the run recorded
// (relative to where tune ran).
func openRunCache(run tune.Config, cfg Config) runCache {
	c := runCache{path: cfg.Cache}
	if c.path == "" {
		c.path = run.Cache
	}
	if c.path == "" {
		c.err = errors.New("the run records no cache")
		return c
	}
	c.manifest, c.err = store.ReadManifest(c.path)
	if c.err != nil {
		c.err = fmt.Errorf("the cache run %s was tuned on: %w (give its current place with --cache)", cfg.Run, c.err)
	}
	return c
}

// tunedFingerprint is the cache fingerprint the run's text tower was tuned
// against, and what says so: final/'s record when it is a full model, else
// the fingerprint the run was told to expect, else its cache's manifest.
func tunedFingerprint(run tune.Config, fin tune.Final, cfg Config, cache runCache) (fp, from string, err error) {
	if fin.Full && fin.ImageFingerprint != "" {
		return fin.ImageFingerprint, fin.Weights, nil
	}
	if run.ExpectFingerprint != "" && cfg.Cache == "" {
		return run.ExpectFingerprint, "cache " + cache.path, nil
	}
	if cache.err != nil {
		return "", "", fmt.Errorf("bundle: %w", cache.err)
	}
	return cache.manifest.Fingerprint, "cache " + cache.path, nil
}
