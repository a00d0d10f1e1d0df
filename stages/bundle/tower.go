package bundle

import (
	"fmt"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/stages/extract"
)

// Tower is the locked image tower a bundle carries. The bundle, predict and
// serve only use this surface, so other tower families need only another
// implementation here (or in a registry) and no change to their callers.
type Tower interface {
	// Family names the architecture ("clip"); Open picks the loader by it.
	Family() string
	// Config is the tower's model config as JSON (the bundle's model_config).
	Config() []byte
	// Preprocessor is the eval transform the tower's inputs need.
	Preprocessor() imageproc.Preprocessor
	// EmbedDim is the width E of Encode's rows.
	EmbedDim() int
	// Encode runs pixels (B,3,S,S), preprocessed, through the tower and
	// returns the embeddings (B,E), not normalised. Safe for concurrent use.
	Encode(pixels []float32, B int) []float32
	// Tensors are the weights to store in a bundle; loadTower reads them back.
	Tensors() ([]safetensors.Tensor, error)
	// Free releases the weights.
	Free()
}

// FamilyCLIP is OpenCLIP's ViT image tower (internal/clip).
const FamilyCLIP = "clip"

// openTower builds the tower a bundle is made from — model is a config name or
// JSON file, weights a safetensors file or random:SEED — and returns with it
// the fingerprint the cache extracted by that tower carries.
func openTower(be backend.Backend, model, weights string) (Tower, string, error) {
	cfg, err := clip.LoadConfig(model)
	if err != nil {
		return nil, "", fmt.Errorf("bundle: --model: %w", err)
	}
	if weights == "" {
		return nil, "", fmt.Errorf("bundle: no image-tower weights (--weights FILE or random:SEED)")
	}
	// extract.Fingerprint is the definition of a cache's fingerprint: the
	// bundle must compute the very same to compare it with the run's cache.
	fp, err := extract.Fingerprint(cfg, weights, 0)
	if err != nil {
		return nil, "", fmt.Errorf("bundle: --weights: %w", err)
	}
	var vt *clip.VisionTower
	if seed, ok, err := clip.ParseRandomWeights(weights); ok {
		if err != nil {
			return nil, "", fmt.Errorf("bundle: --weights: %w", err)
		}
		// extract draws a random tower as part of a whole random model, so
		// the same seed gives the same weights only this way.
		m := clip.NewRandomModel(be, cfg, seed)
		m.Text.Free()
		vt = m.Vision
	} else if vt, err = clip.LoadVisionTower(be, cfg, weights); err != nil {
		return nil, "", fmt.Errorf("bundle: --weights: %w", err)
	}
	return newCLIPTower(vt), fp, nil
}

// loadTower rebuilds a bundle's tower from its family, config and tensors.
func loadTower(be backend.Backend, family string, config []byte, src clip.Source, label string) (Tower, error) {
	switch family {
	case FamilyCLIP:
		cfg, err := clip.ParseConfig(config)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: model_config: %w", label, err)
		}
		vt, err := clip.LoadVisionTowerFrom(be, cfg, src, label)
		if err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
		return newCLIPTower(vt), nil
	}
	return nil, fmt.Errorf("bundle %s: image tower family %q unknown to this build (known: %s)", label, family, FamilyCLIP)
}

// CLIPTower makes a CLIP image tower a bundle's Tower (freeing the Tower
// frees vt).
func CLIPTower(vt *clip.VisionTower) Tower { return newCLIPTower(vt) }

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

// clipTower adapts clip.VisionTower to Tower.
type clipTower struct {
	vt  *clip.VisionTower
	pre imageproc.Preprocessor
}

func newCLIPTower(vt *clip.VisionTower) *clipTower {
	pre := imageproc.CLIPPreprocessor(vt.Config().Vision.ImageSize)
	// Field photos, phone photos above all, are stored sideways with an EXIF
	// orientation; the cache's images were decoded without it (as PIL does),
	// but a photo must be upright to be recognised.
	pre.ApplyEXIF = true
	return &clipTower{vt: vt, pre: pre}
}

func (t *clipTower) Family() string                       { return FamilyCLIP }
func (t *clipTower) Config() []byte                       { return t.vt.Config().JSON() }
func (t *clipTower) Preprocessor() imageproc.Preprocessor { return t.pre }
func (t *clipTower) EmbedDim() int                        { return t.vt.Config().EmbedDim }
func (t *clipTower) Encode(px []float32, B int) []float32 { return t.vt.Encode(px, B) }
func (t *clipTower) Tensors() ([]safetensors.Tensor, error) {
	return t.vt.Tensors()
}
func (t *clipTower) Free() { t.vt.Free() }
