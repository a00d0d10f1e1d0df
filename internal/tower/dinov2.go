package tower

import (
	"encoding/json"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/dinov2"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/weights"
)

// DINOv2 (internal/dinov2): Meta's or HF's names; pooling cls, mean or cls+mean.

var dinov2Family = family{
	name:     DINOv2,
	builtins: dinov2.BuiltinNames,
	builtin: func(name string) (model, bool) {
		c, ok := dinov2.Builtin(name)
		return dinov2Model{c}, ok
	},
	parse: func(data []byte) (model, error) {
		c, err := dinov2.ParseConfig(data)
		return dinov2Model{c}, err
	},
	claims: func(top map[string]json.RawMessage) bool {
		if raw, ok := top["model_type"]; ok {
			var t string
			_ = json.Unmarshal(raw, &t)
			return t == "dinov2" || t == "dinov2_with_registers"
		}
		return has(top, "depth") && !has(top, "depths")
	},
}

type dinov2Model struct{ cfg dinov2.Config }

func (m dinov2Model) json() []byte                         { return m.cfg.JSON() }
func (m dinov2Model) imageSize() int                       { return m.cfg.ImageSize }
func (m dinov2Model) pools() []string                      { return dinov2.Pools() }
func (m dinov2Model) dim(pool string) int                  { return m.cfg.Dim(pool) }
func (m dinov2Model) flops() float64                       { return m.cfg.FLOPs() }
func (m dinov2Model) bytesPerImage(e int) int64            { return m.cfg.BytesPerImage(e) }
func (m dinov2Model) preprocessor() imageproc.Preprocessor { return m.cfg.Preprocessor() }

func (m dinov2Model) load(be backend.Backend, path string) (encoder, error) {
	d, err := dinov2.LoadFile(be, m.cfg, path)
	return dinov2Encoder{d}, err
}

func (m dinov2Model) random(be backend.Backend, seed int64) (encoder, error) {
	d, err := dinov2.NewRandom(be, m.cfg, seed)
	return dinov2Encoder{d}, err
}

func (m dinov2Model) fromTensors(be backend.Backend, src weights.Source, label string) (encoder, error) {
	d, err := dinov2.Load(be, m.cfg, src, label)
	return dinov2Encoder{d}, err
}

type dinov2Encoder struct{ m *dinov2.Model }

func (e dinov2Encoder) encode(px []float32, n int, pool string) []float32 {
	return e.m.Encode(px, n, pool)
}
func (e dinov2Encoder) encodeTensor(px backend.Tensor, n int, pool string) []float32 {
	return e.m.EncodeTensor(px, n, pool)
}
func (e dinov2Encoder) tensors() []weights.Tensor { return e.m.Tensors() }
func (e dinov2Encoder) free()                     { e.m.Free() }
