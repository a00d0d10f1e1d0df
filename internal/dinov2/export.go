package dinov2

import (
	"fmt"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/weights"
)

// Tensors returns the model's weights under Meta's names and shapes (the
// canonical scheme, which Load reads back). LayerScale is folded into the
// projections when a model is built, so the gammas come back as ones and
// attn.proj / the FFN's output projection as the scaled weights: the same
// function, and a model rebuilt from these tensors computes identical
// numbers. The values are read from the backend: export from a float32
// backend (the CPU) to keep them exact.
func (m *Model) Tensors() []weights.Tensor {
	be, c := m.be, m.cfg
	var out []weights.Tensor
	dev := map[string]backend.Tensor{
		"patch_embed.proj.weight": m.patchW, "patch_embed.proj.bias": m.patchB,
		"norm.weight": m.normG, "norm.bias": m.normB,
	}
	in, outName := "mlp.fc1", "mlp.fc2"
	if c.FFNLayer == FFNSwiGLU {
		in, outName = "mlp.w12", "mlp.w3"
	}
	for i, b := range m.blocks {
		p := fmt.Sprintf("blocks.%d.", i)
		for n, t := range map[string]backend.Tensor{
			"norm1.weight": b.norm1G, "norm1.bias": b.norm1B, "attn.qkv.weight": b.qkvW, "attn.qkv.bias": b.qkvB,
			"attn.proj.weight": b.projW, "attn.proj.bias": b.projB, "norm2.weight": b.norm2G, "norm2.bias": b.norm2B,
			in + ".weight": b.inW, in + ".bias": b.inB, outName + ".weight": b.outW, outName + ".bias": b.outB,
		} {
			if t != nil {
				dev[p+n] = t
			}
		}
	}
	for _, p := range c.params() {
		var d []float32
		switch {
		case m.host[p.name] != nil:
			d = append([]float32(nil), m.host[p.name]...)
		case dev[p.name] != nil:
			d = be.ToFloat32(dev[p.name], nil)
		case hasSuffix(p.name, ".gamma"):
			d = make([]float32, numel(p.shape))
			fill(d, 1)
		default:
			panic("dinov2: no tensor for " + p.name)
		}
		out = append(out, weights.Tensor{Name: p.name, Shape: p.shape, Data: d})
	}
	return out
}
