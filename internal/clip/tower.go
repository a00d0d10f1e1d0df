package clip

import (
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/weights"
)

// The image tower as one of internal/tower's families: loaded from any
// Source (a bundle's tensors) and exported as named tensors.

// LoadVisionTowerFrom is LoadVisionTower reading from any Source (OpenCLIP
// or HF names); text-tower tensors in src are skipped.
func LoadVisionTowerFrom(be backend.Backend, cfg Config, src Source, label string) (*VisionTower, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	vt := newVisionTower(be, cfg)
	if _, _, err := load(be, src, label, loadRequest{sets: []paramSet{vt.ps}, towers: []string{"vision"}}); err != nil {
		return nil, err
	}
	return vt, nil
}

// Tensors returns the image tower's weights under OpenCLIP names and shapes
// (visual.proj (W,E), conv1 (W,3,P,P)), as SaveModel writes them;
// LoadVisionTowerFrom reads them back exactly. The values are read from the
// backend: export from a float32 one.
func (vt *VisionTower) Tensors() []weights.Tensor {
	fts, err := encodeParams(vt.be, vt.ps, OpenCLIP)
	if err != nil { // OpenCLIP names are the tower's own: no mapping can fail
		panic(err)
	}
	out := make([]weights.Tensor, len(fts))
	for i, f := range fts {
		out[i] = weights.Tensor{Name: f.name, Shape: f.shape, Data: f.data}
	}
	return out
}
