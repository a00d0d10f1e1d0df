package emu_test

import (
	"fmt"
	"os"
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

// TestLiTMatchesCPU: the GPU trainer on the emulator against stages/tune's
// CPU trainer from the same random weights over the same random batches
// (dedup with duplicates and padding, trim, the plain path at a context
// that is no multiple of 8, the image head, binding gradient clipping).
// Measured in float32: loss, gradient norm and logit scale ≤ 6.3e-6
// relative, gradients ≤ 5.0e-5 per tensor (the head case; 5e-6 without),
// weights after 3 steps ≤ 2.4e-5; bounds 2e-5 and 1e-4. In bf16 (float32
// masters) the loss and gradient norm ≤ 1.5e-2, step 0's gradients ≤
// 2.4e-2 per tensor; bound 5e-2 (bf16 keeps 8 bits of mantissa: a few
// 1e-3 per op, compounded over the layers).
func TestLiTMatchesCPU(t *testing.T) {
	for _, p := range []struct {
		prec cuda.Precision
		tol  littest.CPUTolerances
	}{
		{cuda.F32, littest.CPUTolerances{Loss: 2e-5, Grads: 1e-4, Weights: 1e-4}},
		{cuda.BF16, littest.CPUTolerances{Loss: 5e-2, Grads: 5e-2, GradSteps: 1}},
	} {
		g := open(t, cuda.Options{Precision: p.prec})
		for _, c := range littest.Cases {
			t.Run(p.prec.String()+"/"+c.String(), func(t *testing.T) { littest.MatchesCPU(t, g, c, p.tol) })
		}
	}
}

// TestLiTMemoryStable: device memory after step 10 equals after step 2
// over steps of changing shapes (issue 11).
func TestLiTMemoryStable(t *testing.T) {
	littest.MemoryStable(t, open(t, cuda.Options{Precision: cuda.BF16}))
}

// TestLiTGraphsMatch: CUDA graphs replay exactly what direct launches do
// (the emulator runs the recorded tasks unchanged: bit-identical).
func TestLiTGraphsMatch(t *testing.T) {
	for _, p := range []cuda.Precision{cuda.F32, cuda.BF16} {
		littest.GraphsMatch(t, open(t, cuda.Options{Precision: p}), 0)
	}
}

// TestLiTOutOfMemory: errors that name the op and the size, at start-up and
// when a step needs a larger arena than the device has room for (the
// emulator's memory limit; the weights stay the last step's).
func TestLiTOutOfMemory(t *testing.T) {
	g := open(t, cuda.Options{Precision: cuda.BF16})
	limit := func(extra int64) {
		free, total, err := g.Device().MemInfo() // the emulator's: every backend of the process
		if err != nil {
			t.Fatal(err)
		}
		os.Setenv("LITCACHE_EMU_MEM_LIMIT", fmt.Sprint(max(1, int64(total-free)+extra)))
	}
	unlimit := func() { os.Unsetenv("LITCACHE_EMU_MEM_LIMIT") }
	t.Run("start", func(t *testing.T) {
		limit(64 << 20)
		defer unlimit()
		littest.OutOfMemory(t, g, 8192) // 8192² float32 logits alone are 256 MiB
	})
	t.Run("growth", func(t *testing.T) { littest.GrowthOutOfMemory(t, g, limit, unlimit) })
}

// TestLiTBenchmarkSmall runs the GPU check's training benchmark at a size
// the emulator runs in seconds (littest.SmallShape): every case completes
// and reports its figures (the speeds mean nothing here).
func TestLiTBenchmarkSmall(t *testing.T) {
	g := open(t, cuda.Options{Precision: cuda.BF16})
	var figs map[string]map[string]float64
	testing.Benchmark(func(b *testing.B) { figs = littest.BenchLiT(b, g, littest.SmallShape()) })
	for _, c := range littest.SmallShape().Cases {
		m := figs[c.Name]
		t.Logf("%s: %v", c.Name, m)
		if !(m["samples/s"] > 0 && m["peak-GiB"] > 0 && m["captions"] > 0) {
			t.Errorf("%s: figures %v", c.Name, m)
		}
		if c.Graphs != (m["graphs"] > 0) {
			t.Errorf("%s: %v graphs captured", c.Name, m["graphs"])
		}
	}
}
