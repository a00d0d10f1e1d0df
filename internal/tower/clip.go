package tower

import (
	"encoding/json"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/weights"
)

// CLIP's image tower (internal/clip): OpenCLIP or HF CLIP weights; the
// embedding is the projected class token.

var clipFamily = family{
	name:     CLIP,
	builtins: clip.BuiltinNames,
	builtin: func(name string) (model, bool) {
		c, ok := clip.Builtin(name)
		return clipModel{c}, ok
	},
	parse: func(data []byte) (model, error) {
		c, err := clip.ParseConfig(data)
		return clipModel{c}, err
	},
	claims: func(top map[string]json.RawMessage) bool {
		return has(top, "vision_cfg", "model_cfg", "vision_config")
	},
}

type clipModel struct{ cfg clip.Config }

func (m clipModel) json() []byte              { return m.cfg.JSON() }
func (m clipModel) imageSize() int            { return m.cfg.Vision.ImageSize }
func (m clipModel) pools() []string           { return []string{"cls"} }
func (m clipModel) dim(string) int            { return m.cfg.EmbedDim }
func (m clipModel) flops() float64            { return m.cfg.Vision.FLOPs(m.cfg.EmbedDim) }
func (m clipModel) bytesPerImage(e int) int64 { return m.cfg.VisionBytesPerImage(e) }
func (m clipModel) preprocessor() imageproc.Preprocessor {
	return imageproc.CLIPPreprocessor(m.cfg.Vision.ImageSize)
}

func (m clipModel) load(be backend.Backend, path string) (encoder, error) {
	vt, err := clip.LoadVisionTower(be, m.cfg, path)
	if err != nil {
		return nil, err
	}
	return clipEncoder{vt}, nil
}

// random is extract's random CLIP tower: the image tower of
// NewRandomModel(seed), which initialises it before the text tower from the
// same stream — not NewRandomVisionTower, whose stream differs — so that
// a fingerprint shared with existing caches means the same embeddings.
func (m clipModel) random(be backend.Backend, seed int64) (encoder, error) {
	if err := m.cfg.Validate(); err != nil {
		return nil, err
	}
	full := clip.NewRandomModel(be, m.cfg, seed)
	full.Text.Free()
	return clipEncoder{full.Vision}, nil
}

func (m clipModel) fromTensors(be backend.Backend, src weights.Source, label string) (encoder, error) {
	vt, err := clip.LoadVisionTowerFrom(be, m.cfg, src, label)
	if err != nil {
		return nil, err
	}
	return clipEncoder{vt}, nil
}

type clipEncoder struct{ vt *clip.VisionTower }

func (e clipEncoder) encode(px []float32, n int, _ string) []float32 { return e.vt.Encode(px, n) }
func (e clipEncoder) encodeTensor(px backend.Tensor, n int, _ string) []float32 {
	return e.vt.EncodeTensor(px, n)
}
func (e clipEncoder) tensors() []weights.Tensor { return e.vt.Tensors() }
func (e clipEncoder) free()                     { e.vt.Free() }
