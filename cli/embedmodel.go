package cli

import (
	"fmt"
	"os"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/stages/tune"
)

// embedModel is what embed's --model and --weights name, resolved before any
// tensor is read: a weights file holding both towers or the text tower alone
// (tune --text-only), a tune run or final/ folder in either form, or
// random:SEED.
type embedModel struct {
	cfg     clip.Config
	weights string
	seed    int64
	random  bool
	final   *tune.Final // a run folder
	vision  bool        // the file (or run) can give the image tower
}

// resolveEmbedModel reads the config and what the weights hold. model may
// be "" only for a run folder, which brings its own open_clip_config.json.
func resolveEmbedModel(model, weights string) (embedModel, error) {
	var em embedModel
	var err error
	em.weights = weights
	if em.seed, em.random, err = clip.ParseRandomWeights(weights); err != nil {
		return em, fmt.Errorf("embed: --weights: %w", err)
	}
	if fi, err := os.Stat(weights); err == nil && fi.IsDir() {
		if model != "" {
			return em, fmt.Errorf("embed: --model: a run folder (--weights %s) brings its own open_clip_config.json; leave --model out", weights)
		}
		f, err := tune.OpenFinal(weights)
		if err != nil {
			return em, fmt.Errorf("embed: --weights: %w", err)
		}
		em.final, em.cfg, em.vision = &f, f.Config, f.Full || f.Image != nil
		if f.Image != nil {
			if em.cfg, err = f.Image.FullConfig(f.Config); err != nil {
				return em, fmt.Errorf("embed: --weights: %w", err)
			}
		}
		return em, nil
	}
	if model == "" {
		return em, fmt.Errorf("embed: --model is required unless --weights is a tune run folder")
	}
	if em.cfg, err = clip.LoadConfig(model); err != nil {
		return em, fmt.Errorf("embed: --model: %w", err)
	}
	if em.random {
		em.vision = true
		return em, nil
	}
	c, err := clip.ReadContents(weights)
	if err != nil {
		return em, fmt.Errorf("embed: --weights: %w", err)
	}
	em.vision = c.Vision
	return em, nil
}

// checkImages refuses images when the weights have no image tower to give.
func (em embedModel) checkImages(images bool) error {
	if !images || em.vision {
		return nil
	}
	what := em.weights + " holds the text tower alone (tune --text-only)"
	if em.final != nil {
		what = em.weights + " holds the text tower alone and its training cache records no image tower"
	}
	return fmt.Errorf("embed: %s: images need the image tower: give a full model (tune's default final/) or the run folder of a cache that records its tower", what)
}

// load builds the towers the inputs need on be: the image tower only when
// images are embedded, so a text tower alone serves --text and --ids.
func (em embedModel) load(be backend.Backend, images bool) (*clip.VisionTower, *clip.TextTower, error) {
	if err := em.checkImages(images); err != nil {
		return nil, nil, err
	}
	switch {
	case em.random:
		m := clip.NewRandomModel(be, em.cfg, em.seed)
		return m.Vision, m.Text, nil
	case em.final != nil && images:
		m, err := em.final.LoadModel(be)
		if err != nil {
			return nil, nil, fmt.Errorf("embed: --weights: %w", err)
		}
		return m.Vision, m.Text, nil
	case em.final != nil:
		tt, err := clip.LoadTextTower(be, em.cfg, em.final.Weights)
		if err != nil {
			return nil, nil, fmt.Errorf("embed: --weights: %w", err)
		}
		return nil, tt, nil
	case images:
		m, err := clip.LoadModel(be, em.cfg, em.weights)
		if err != nil {
			return nil, nil, fmt.Errorf("embed: --weights: %w", err)
		}
		return m.Vision, m.Text, nil
	}
	tt, err := clip.LoadTextTower(be, em.cfg, em.weights)
	if err != nil {
		return nil, nil, fmt.Errorf("embed: --weights: %w", err)
	}
	return nil, tt, nil
}
