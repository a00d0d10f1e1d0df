package tower

import (
	"encoding/json"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/swin"
	"github.com/litcache/litcache/internal/weights"
)

// Swin v1 (internal/swin): torchvision's or timm's names; the embedding is
// the mean token after the final norm.

var swinFamily = family{
	name:     Swin,
	builtins: swin.BuiltinNames,
	builtin: func(name string) (model, bool) {
		c, ok := swin.Builtin(name)
		return swinModel{c}, ok
	},
	parse: func(data []byte) (model, error) {
		c, err := swin.ParseConfig(data)
		return swinModel{c}, err
	},
	claims: func(top map[string]json.RawMessage) bool { return has(top, "depths") },
}

type swinModel struct{ cfg swin.Config }

func (m swinModel) json() []byte                         { return m.cfg.JSON() }
func (m swinModel) imageSize() int                       { return m.cfg.ImageSize }
func (m swinModel) pools() []string                      { return []string{"mean"} }
func (m swinModel) dim(string) int                       { return m.cfg.Dim() }
func (m swinModel) flops() float64                       { return m.cfg.FLOPs() }
func (m swinModel) bytesPerImage(e int) int64            { return m.cfg.BytesPerImage(e) }
func (m swinModel) preprocessor() imageproc.Preprocessor { return m.cfg.Preprocessor() }

func (m swinModel) load(be backend.Backend, path string) (encoder, error) {
	s, err := swin.LoadFile(be, m.cfg, path)
	return swinEncoder{s}, err
}

func (m swinModel) random(be backend.Backend, seed int64) (encoder, error) {
	s, err := swin.NewRandom(be, m.cfg, seed)
	return swinEncoder{s}, err
}

func (m swinModel) fromTensors(be backend.Backend, src weights.Source, label string) (encoder, error) {
	s, err := swin.Load(be, m.cfg, src, label)
	return swinEncoder{s}, err
}

type swinEncoder struct{ m *swin.Model }

func (e swinEncoder) encode(px []float32, n int, _ string) []float32 { return e.m.Encode(px, n) }
func (e swinEncoder) encodeTensor(px backend.Tensor, n int, _ string) []float32 {
	return e.m.EncodeTensor(px, n)
}
func (e swinEncoder) tensors() []weights.Tensor { return e.m.Tensors() }
func (e swinEncoder) free()                     { e.m.Free() }
