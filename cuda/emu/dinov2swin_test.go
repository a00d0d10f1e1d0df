package emu_test

import (
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/tower/towertest"
)

// TestDINOv2SwinEmulated runs the DINOv2 and Swin fixtures' towers on the
// emulated GPU (the attention-bias kernel of Swin's windows, SwiGLU,
// LayerScale, registers, the resized position table): every pooling within
// 2e-2 relative in bf16 (issue 18's bound for a GPU; measured 0.0049–0.0090
// here) and 1e-4 in float32 (measured ≤ 4.9e-7), as cuda/towers asks of a
// real one. Broken on purpose by dropping the bias in cuda's AttentionBias:
// Swin's pooled embedding then misses by 0.098–0.26.
func TestDINOv2SwinEmulated(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  cuda.Options
		tol  float64
	}{
		{"bf16", cuda.Options{Precision: cuda.BF16}, 2e-2},
		{"f32", cuda.Options{Precision: cuda.F32}, 1e-4},
	} {
		t.Run(c.name, func(t *testing.T) { towertest.Check(t, open(t, c.opt), c.tol) })
	}
}
