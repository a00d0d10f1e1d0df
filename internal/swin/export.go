package swin

import (
	"fmt"
	"slices"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/weights"
)

// Tensors returns the model's weights under torchvision's names and shapes
// (the canonical scheme, which Load reads back; the relative position
// indexes are left out: Load computes them). The values are read from the
// backend: export from a float32 backend (the CPU) to keep them exact.
func (m *Model) Tensors() []weights.Tensor {
	be := m.be
	dev := map[string]backend.Tensor{
		"features.0.0.weight": m.patchW, "features.0.0.bias": m.patchB,
		"features.0.2.weight": m.pnormG, "features.0.2.bias": m.pnormB,
		"norm.weight": m.normG, "norm.bias": m.normB,
	}
	host := map[string][]float32{}
	for i, st := range m.stages {
		for j, b := range st.blocks {
			p := fmt.Sprintf("features.%d.%d.", 2*i+1, j)
			for n, t := range map[string]backend.Tensor{
				"norm1.weight": b.norm1G, "norm1.bias": b.norm1B, "attn.qkv.weight": b.qkvW, "attn.qkv.bias": b.qkvB,
				"attn.proj.weight": b.projW, "attn.proj.bias": b.projB, "norm2.weight": b.norm2G, "norm2.bias": b.norm2B,
				"mlp.0.weight": b.fc1W, "mlp.0.bias": b.fc1B, "mlp.3.weight": b.fc2W, "mlp.3.bias": b.fc2B,
			} {
				dev[p+n] = t
			}
			host[p+"attn.relative_position_bias_table"] = b.table
		}
		if st.merge != nil {
			p := fmt.Sprintf("features.%d.", 2*i+2)
			dev[p+"reduction.weight"], dev[p+"norm.weight"], dev[p+"norm.bias"] = st.merge.redW, st.merge.normG, st.merge.normB
		}
	}
	var out []weights.Tensor
	for _, p := range m.cfg.params() {
		var d []float32
		if h, ok := host[p.name]; ok {
			d = slices.Clone(h)
		} else {
			d = be.ToFloat32(dev[p.name], nil)
		}
		out = append(out, weights.Tensor{Name: p.name, Shape: p.shape, Data: d})
	}
	return out
}
