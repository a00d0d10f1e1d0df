package emu_test

import (
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/cuda/littest"
)

// TestLiTFixtureF32: the fixture's 12 steps through the GPU trainer in
// float32 on the emulator (float32 resident rows), against HF's float64
// run. Measured: loss curve 2.6e-7 relative, logit scale 3.9e-8, step-0
// gradients 9.9e-7 (ln_1.bias), final weights 3.5e-7 (token_embedding);
// bounds a few times that, ten or more times under issue 11's 1e-4 (which
// the GPU check applies). With the rows in float16 instead every gradient
// measured 2e-4 off (the features' rounding): caught.
func TestLiTFixtureF32(t *testing.T) {
	g := open(t, cuda.Options{Precision: cuda.F32})
	littest.RunFixture(t, g, littest.Tolerances{Loss: 2e-6, LogitScale: 5e-7, Grads: 5e-6, Final: 5e-6}, false)
}

// TestLiTFixtureBF16: the same in bf16 with float32 masters and float16
// rows: the loss curve within issue 11's 1e-2 relative; measured 3.1e-3,
// logit scale 1.8e-6 (bound 2e-5).
func TestLiTFixtureBF16(t *testing.T) {
	g := open(t, cuda.Options{Precision: cuda.BF16})
	littest.RunFixture(t, g, littest.Tolerances{Loss: 1e-2, LogitScale: 2e-5}, false)
}
