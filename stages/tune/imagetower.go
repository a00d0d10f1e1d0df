package tune

import (
	"errors"
	"fmt"
	"os"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/store"
)

// ImageTower is the locked image tower a cache was made with, found from the
// cache's manifest (store.TowerSource): tune writes it with the tuned text
// tower into final/ as one full OpenCLIP model (LiT keeps the image tower as
// it was — arXiv 2111.07991 — so copying it loses nothing).
type ImageTower struct {
	// Config is the model config that made the cache (its vision_cfg is the tower).
	Config clip.Config
	// Weights is the weights file, or random:SEED for a random initialisation.
	Weights string
	// Fingerprint is the cache's; the tower reproduces it.
	Fingerprint string
	// Cache is the cache the tower was found from.
	Cache string
}

// ErrNoTowerRecord: the cache's manifest does not say where its image tower
// came from (a cache made before litcache recorded it).
var ErrNoTowerRecord = errors.New("the cache does not record its image tower")

// ErrNotCLIP: the cache's image tower is of another family than CLIP's
// (DINOv2, Swin): no OpenCLIP model holds it beside the text tower, so
// final/ holds the text tower alone.
var ErrNotCLIP = errors.New("the cache's image tower is not a CLIP tower")

// FindImageTower reads the image tower of the cache in dir from its manifest
// and checks that the weights it names (a file, read and hashed now, or a
// random seed) reproduce the cache's fingerprint: a weights file changed or
// replaced since extraction is refused rather than copied.
func FindImageTower(dir string) (ImageTower, error) {
	m, err := store.ReadManifest(dir)
	if err != nil {
		return ImageTower{}, fmt.Errorf("tune: cache %s: %w", dir, err)
	}
	if m.Tower == nil {
		return ImageTower{}, fmt.Errorf("tune: cache %s: %w (made before litcache recorded it)", dir, ErrNoTowerRecord)
	}
	if f := m.Tower.Family; f != "" && f != tower.CLIP {
		return ImageTower{}, fmt.Errorf("cache %s: %w (%s)", dir, ErrNotCLIP, f)
	}
	cfg, err := clip.ParseConfig(m.Tower.Config)
	if err != nil {
		return ImageTower{}, fmt.Errorf("tune: cache %s: the recorded tower's config: %w", dir, err)
	}
	t := ImageTower{Config: cfg, Weights: m.Tower.Weights, Fingerprint: m.Fingerprint, Cache: dir}
	if _, random, err := clip.ParseRandomWeights(t.Weights); err != nil {
		return t, fmt.Errorf("tune: cache %s: %w", dir, err)
	} else if !random {
		if _, err := os.Stat(t.Weights); err != nil {
			return t, fmt.Errorf("tune: cache %s was made with image tower weights %s: %w", dir, t.Weights, err)
		}
	}
	tc, err := tower.ParseConfig(tower.CLIP, m.Tower.Config)
	if err != nil {
		return t, fmt.Errorf("tune: cache %s: the recorded tower's config: %w", dir, err)
	}
	fp, err := tc.Fingerprint(t.Weights, m.Tower.Pool)
	if err != nil {
		return t, fmt.Errorf("tune: cache %s: %w", dir, err)
	}
	if fp != m.Fingerprint {
		return t, fmt.Errorf("tune: cache %s was made by image tower %s, but its recorded weights %s now give %s (changed since extraction?)",
			dir, m.Fingerprint, t.Weights, fp)
	}
	return t, nil
}

// Load builds the tower on be: read from the weights file (either naming
// scheme; the text tower's tensors skipped), or regenerated from the seed
// exactly as extract drew it (clip.NewRandomModel's image tower).
func (t ImageTower) Load(be backend.Backend) (*clip.VisionTower, error) {
	seed, random, err := clip.ParseRandomWeights(t.Weights)
	if err != nil {
		return nil, fmt.Errorf("tune: image tower: %w", err)
	}
	if random {
		m := clip.NewRandomModel(be, t.Config, seed)
		m.Text.Free()
		return m.Vision, nil
	}
	vt, err := clip.LoadVisionTower(be, t.Config, t.Weights)
	if err != nil {
		return nil, fmt.Errorf("tune: image tower: %w", err)
	}
	return vt, nil
}

// FullConfig is the config of the full model: the image tower's vision_cfg
// with the text model's text_cfg. One OpenCLIP model has one embed_dim and
// one activation, so the two configs must agree on both.
func (t ImageTower) FullConfig(text clip.Config) (clip.Config, error) {
	if t.Config.EmbedDim != text.EmbedDim {
		return clip.Config{}, fmt.Errorf("tune: the image tower of cache %s embeds to %d, the text model to %d", t.Cache, t.Config.EmbedDim, text.EmbedDim)
	}
	if t.Config.QuickGELU != text.QuickGELU {
		return clip.Config{}, fmt.Errorf("tune: the image tower of cache %s has quick_gelu %v, the text model %v: one OpenCLIP model has one activation (use the matching --model, e.g. a -quickgelu name, or --text-only)",
			t.Cache, t.Config.QuickGELU, text.QuickGELU)
	}
	full := text
	full.Vision = t.Config.Vision
	return full, nil
}
