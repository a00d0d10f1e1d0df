package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/cuda/emu"
	"github.com/litcache/litcache/store"
)

func TestMain(m *testing.M) { emu.Main(m) }

// TestDemoOnEmulatedGPU runs the demo with a CUDA backend in bf16, as
// `litcache demo --device cuda` does, on the CUDA emulator (cuda/emu: the
// real kernels compiled as C++ on the CPU): the cache must say the GPU made
// it, and the tuned towers must still beat chance by far. It proves the
// demo's wiring to the GPU paths, not a GPU; .gpu/check.sh runs on one.
func TestDemoOnEmulatedGPU(t *testing.T) {
	g := emu.Open(t, cuda.Options{Precision: cuda.BF16})
	cfg := DefaultConfig()
	cfg.Out = t.TempDir()
	cfg.Species, cfg.TrainPerSpecies, cfg.ValPerSpecies = 6, 12, 4
	cfg.ImageSize, cfg.Epochs, cfg.BatchSize = 48, 6, 24
	cfg.Warmups = []int{2}
	cfg.Threads = 2
	cfg.Backend = g
	if raceEnabled { // the wiring only; .ci/run runs this package without -race for the accuracy
		t.Log("race detector on: accuracy not asserted (run without -race for that, as .ci/run does)")
		cfg.TrainPerSpecies, cfg.Epochs = 8, 2
		cfg.BatchSize = 16
	}
	var log bytes.Buffer
	cfg.Log = &log
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, log.String())
	}
	r, err := store.Open(res.SweepDir+"/../cache", store.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prod := r.Manifest().Producer
	r.Close()
	if prod.Backend != "cuda" || prod.Precision != "bf16" {
		t.Errorf("cache producer %+v, want the CUDA backend in bf16", prod)
	}
	// Chance is 1/6; the CPU run of this size reaches 0.6-0.9.
	for _, m := range res.Members {
		if !raceEnabled && m.Top1 < 2.5*res.Chance1 {
			t.Errorf("%s: top-1 %.3f, want at least 2.5× chance (%.3f)\nlog:\n%s", m.Name, m.Top1, 2.5*res.Chance1, log.String())
		}
	}
	if !strings.Contains(log.String(), "cuda") {
		t.Errorf("the log never names the GPU backend:\n%s", log.String())
	}
	t.Logf("demo on the emulated GPU (%.1fs): top-1 %.3f (chance %.3f)", res.Seconds, res.Members[0].Top1, res.Chance1)
}
