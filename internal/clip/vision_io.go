package clip

import (
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/safetensors"
)

// Tensors returns the image tower's weights under OpenCLIP names and shapes
// (float32, visual.proj (W,E)), as SaveModel writes them: a classifier bundle
// carries the locked tower this way, and LoadVisionTowerFrom reads it back
// exactly.
func (vt *VisionTower) Tensors() ([]safetensors.Tensor, error) {
	fts, err := encodeParams(vt.be, vt.ps, OpenCLIP)
	if err != nil {
		return nil, err
	}
	return toSafetensors(fts), nil
}

// LoadVisionTowerFrom builds the image tower from any Source holding OpenCLIP
// or HF names; the text tower's tensors and logit_scale are skipped, any
// other tensor is an error (filter the source first). label names it in errors.
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
