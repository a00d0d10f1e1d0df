package tune

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
)

// Final is a finished run's final/ opened, in either form: a full model
// (the default: image tower + tuned text tower in one file) or the text
// tower alone (TextOnly, ImageHead, runs before full models), whose image
// tower is then the one the run's training cache records. Stages that need
// the whole model (bundle, embed) load it with LoadModel and never ask
// which form they were given.
type Final struct {
	Dir     string      // the final/ folder
	Weights string      // final/open_clip_model.safetensors
	Config  clip.Config // final/open_clip_config.json: both towers' shapes when Full
	Full    bool        // the file holds the image tower
	// ImageFingerprint is the fingerprint of the caches the image tower
	// makes: the file's metadata when Full, else the training cache's.
	ImageFingerprint string
	// Image is the image tower's source when not Full: the training cache's
	// recorded tower (nil when the cache records none).
	Image *ImageTower
	// ImageHead is final/image_head.safetensors when the run trained one, else "".
	ImageHead string
}

// OpenFinal opens the final/ of a run folder (or a final/ folder itself).
func OpenFinal(run string) (Final, error) {
	dir := run
	if _, err := os.Stat(filepath.Join(run, "final", modelFile)); err == nil {
		dir = filepath.Join(run, "final")
	}
	f := Final{Dir: dir, Weights: filepath.Join(dir, modelFile)}
	if _, err := os.Stat(f.Weights); err != nil {
		return f, fmt.Errorf("tune: %s holds no finished run (no final/%s): %w", run, modelFile, err)
	}
	var err error
	if f.Config, err = clip.LoadConfig(filepath.Join(dir, clip.ConfigFileName)); err != nil {
		return f, fmt.Errorf("tune: %s: %w", dir, err)
	}
	c, err := clip.ReadContents(f.Weights)
	if err != nil {
		return f, fmt.Errorf("tune: %w", err)
	}
	f.Full = c.Vision
	if _, err := os.Stat(filepath.Join(dir, headFile)); err == nil {
		f.ImageHead = filepath.Join(dir, headFile)
	}
	if f.Full {
		f.ImageFingerprint = c.Metadata[clip.MetaImageFingerprint]
		return f, nil
	}
	// The text tower alone: its image tower is the training cache's.
	b, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "config.json"))
	if err != nil {
		return f, nil // a loose final/ folder: the image tower must come from elsewhere
	}
	var rc Config
	if err := json.Unmarshal(b, &rc); err != nil {
		return f, fmt.Errorf("tune: %s: %w", filepath.Join(filepath.Dir(dir), "config.json"), err)
	}
	if rc.Cache == "" {
		return f, nil
	}
	if t, err := FindImageTower(rc.Cache); err == nil {
		f.Image, f.ImageFingerprint = &t, t.Fingerprint
	}
	return f, nil
}

// LoadModel builds the whole model on be: from the one file when Full, else
// the text tower from final/ and the image tower from f.Image. Either way
// its Config holds both towers' shapes.
func (f Final) LoadModel(be backend.Backend) (*clip.Model, error) {
	if f.Full {
		m, err := clip.LoadModel(be, f.Config, f.Weights)
		if err != nil {
			return nil, fmt.Errorf("tune: %w", err)
		}
		return m, nil
	}
	if f.Image == nil {
		return nil, fmt.Errorf("tune: %s holds the text tower alone and its run's training cache records no image tower: give the image tower's weights instead", f.Weights)
	}
	full, err := f.Image.FullConfig(f.Config)
	if err != nil {
		return nil, err
	}
	text, err := clip.LoadTextTower(be, full, f.Weights)
	if err != nil {
		return nil, fmt.Errorf("tune: %w", err)
	}
	scale, _, err := clip.ReadLogitScale(f.Weights)
	if err != nil {
		text.Free()
		return nil, fmt.Errorf("tune: %w", err)
	}
	vt, err := f.Image.Load(be)
	if err != nil {
		text.Free()
		return nil, err
	}
	return &clip.Model{Config: full, Vision: vt, Text: text, LogitScale: scale}, nil
}
