package tower

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/litcache/litcache/internal/dinov2"
	"github.com/litcache/litcache/internal/swin"
)

// Linear is one matrix-product shape of a tower's forward pass: Rows × In
// inputs → Out outputs, run Count times per pass (once per block).
type Linear struct{ Rows, In, Out, Count int }

// FLOPs is twice the multiply-adds of the Count products.
func (l Linear) FLOPs() float64 {
	return 2 * float64(l.Count) * float64(l.Rows) * float64(l.In) * float64(l.Out)
}

// Linears lists the tower's Linear layers (attention in and out
// projections, the FFN, Swin's patch merging) for a batch of n images at
// ImageSize: what a GEMM ceiling of the tower is timed on (`litcache bench
// towers`, BenchmarkTowerCPU), beside Config.FLOPs.
func (c Config) Linears(n int) []Linear { return c.m.linears(n) }

func (m clipModel) linears(n int) []Linear {
	v := m.cfg.Vision
	N, W, F, L := n*v.Tokens(), v.Width, v.Hidden(), v.Layers
	return []Linear{{N, W, 3 * W, L}, {N, W, W, L}, {N, W, F, L}, {N, F, W, L}}
}

func (m dinov2Model) linears(n int) []Linear { return dinov2Linears(m.cfg, n) }

func dinov2Linears(c dinov2.Config, n int) []Linear {
	N, C, F, d := n*c.Tokens(), c.EmbedDim, c.Hidden(), c.Depth
	ffnIn := Linear{N, C, F, d}
	if c.FFNLayer == dinov2.FFNSwiGLU {
		ffnIn.Out = 2 * F // w12: both halves in one product
	}
	return []Linear{{N, C, 3 * C, d}, {N, C, C, d}, ffnIn, {N, F, C, d}}
}

func (m swinModel) linears(n int) []Linear { return swinLinears(m.cfg, n) }

func swinLinears(c swin.Config, n int) []Linear {
	var out []Linear
	for i, d := range c.Depths {
		s := c.StageSide(i)
		N, C, F := n*s*s, c.StageDim(i), c.Hidden(i)
		out = append(out, Linear{N, C, 3 * C, d}, Linear{N, C, C, d}, Linear{N, C, F, d}, Linear{N, F, C, d})
		if i < len(c.Depths)-1 {
			o := c.StageSide(i + 1)
			out = append(out, Linear{n * o * o, 4 * C, 2 * C, 1})
		}
	}
	return out
}

func (m clipModel) short() string {
	v := m.cfg.Vision
	return fmt.Sprintf("ViT %d px /%d, width %d, %d layers", v.ImageSize, v.PatchSize, v.Width, v.Layers)
}

func (m dinov2Model) short() string {
	c := m.cfg
	s := fmt.Sprintf("DINOv2 %d px /%d, width %d, %d blocks", c.ImageSize, c.PatchSize, c.EmbedDim, c.Depth)
	if c.NumRegisterTokens > 0 {
		s += fmt.Sprintf(", %d registers", c.NumRegisterTokens)
	}
	if c.FFNLayer == dinov2.FFNSwiGLU {
		s += ", SwiGLU"
	}
	return s
}

func (m swinModel) short() string {
	c := m.cfg
	d := make([]string, len(c.Depths))
	for i, n := range c.Depths {
		d[i] = strconv.Itoa(n)
	}
	return fmt.Sprintf("Swin %d px /%d, width %d, depths %s, window %d", c.ImageSize, c.PatchSize, c.EmbedDim, strings.Join(d, "-"), c.WindowSize)
}
