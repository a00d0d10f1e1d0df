package cli

import (
	"fmt"
	"os"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/stages/tune"
)

// embedModel is what embed's --model and --weights name, resolved before any
// tensor is read: an image tower of any family (internal/tower) and, for a
// CLIP model, its text tower — a weights file holding both towers or the
// text tower alone (tune --text-only), a tune run or final/ folder in either
// form, or random:SEED.
type embedModel struct {
	// tower is --model resolved by the registry (nil for a run folder,
	// whose image tower is tune's: final/'s or its training cache's).
	tower *tower.Config
	// cfg is the CLIP config when there is a text tower (text); for a run
	// folder both towers' shapes.
	cfg     clip.Config
	text    bool
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
		em.final, em.cfg, em.text, em.vision = &f, f.Config, true, f.Full || f.Image != nil
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
	tc, err := tower.Resolve(model)
	if err != nil {
		return em, fmt.Errorf("embed: --model: %w", err)
	}
	em.tower, em.vision = &tc, true
	if tc.Family() == tower.CLIP { // texts need a text tower: only CLIP models have one
		if em.cfg, err = clip.ParseConfig(tc.JSON()); err != nil {
			return em, fmt.Errorf("embed: --model: %w", err)
		}
		em.text = true
		if !em.random {
			c, err := clip.ReadContents(weights)
			if err != nil {
				return em, fmt.Errorf("embed: --weights: %w", err)
			}
			em.vision = c.Vision
		}
	}
	return em, nil
}

// imageSize is the side of the image tower's input.
func (em embedModel) imageSize() int {
	if em.tower != nil {
		return em.tower.ImageSize()
	}
	return em.cfg.Vision.ImageSize
}

// checkPool refuses a pooling the image tower does not offer.
func (em embedModel) checkPool(pool string) error {
	if em.tower != nil {
		_, err := em.tower.Pool(pool)
		return err
	}
	if pool != "" && pool != "cls" { // tune's run folders hold CLIP towers
		return fmt.Errorf("tower: clip pools cls, not %q", pool)
	}
	return nil
}

// checkTexts refuses texts when there is no text tower.
func (em embedModel) checkTexts(model string) error {
	if em.text {
		return nil
	}
	return fmt.Errorf("embed: --text/--ids: %s is a %s image tower, with no text tower (texts need a CLIP model)", model, em.tower.Family())
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

// imageEncoder is the image tower as embed uses it: a registry tower, or
// the CLIP image tower of a tune run.
type imageEncoder interface {
	Encode(pixels []float32, n int) []float32
	Dim() int
	ImageSize() int
	Preprocessor() imageproc.Preprocessor
	Free()
}

// runImages is a tune run's CLIP image tower as an imageEncoder.
type runImages struct {
	vt  *clip.VisionTower
	cfg clip.Config
}

func (r runImages) Encode(px []float32, n int) []float32 { return r.vt.Encode(px, n) }
func (r runImages) Dim() int                             { return r.cfg.EmbedDim }
func (r runImages) ImageSize() int                       { return r.cfg.Vision.ImageSize }
func (r runImages) Free()                                { r.vt.Free() }
func (r runImages) Preprocessor() imageproc.Preprocessor {
	return imageproc.CLIPPreprocessor(r.cfg.Vision.ImageSize)
}

// loadImages builds the image tower on be: the registry's from --model and
// --weights (any family), or a run folder's.
func (em embedModel) loadImages(be backend.Backend, pool string) (imageEncoder, error) {
	if err := em.checkImages(true); err != nil {
		return nil, err
	}
	if em.final == nil {
		tw, err := tower.LoadConfig(be, *em.tower, em.weights, pool)
		if err != nil {
			return nil, fmt.Errorf("embed: --weights: %w", err)
		}
		return tw, nil
	}
	m, err := em.final.LoadModel(be)
	if err != nil {
		return nil, fmt.Errorf("embed: --weights: %w", err)
	}
	m.Text.Free()
	return runImages{m.Vision, m.Config}, nil
}

// loadText builds the CLIP text tower on be. random:SEED's is the text tower
// of NewRandomModel(SEED), whose image tower the registry builds from the
// same seed, so that both sides of a random model belong together.
func (em embedModel) loadText(be backend.Backend) (*clip.TextTower, error) {
	path := em.weights
	switch {
	case em.random:
		m := clip.NewRandomModel(be, em.cfg, em.seed)
		m.Vision.Free()
		return m.Text, nil
	case em.final != nil:
		path = em.final.Weights
	}
	tt, err := clip.LoadTextTower(be, em.cfg, path)
	if err != nil {
		return nil, fmt.Errorf("embed: --weights: %w", err)
	}
	return tt, nil
}
