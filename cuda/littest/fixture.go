// Package littest holds the GPU tests that run both on the CPU emulator
// (cuda/emu) and on a GPU (cuda/towers, in the GPU check). For the GPU LiT
// trainer (cuda.LiT): trajectory parity with the clip-tiny training fixture,
// agreement with the CPU trainer (stages/tune) on random batches, stable
// device memory over steps of changing shapes, CUDA graphs against direct
// launches, and out-of-memory errors naming what was asked for. For the
// clip-tiny towers (towers.go): the image tower against the fixture's
// embeddings, the text tower's gradients against the CPU's. Each takes the
// backend to run on, or an Opener; the callers open it (emulated or real).
package littest

import (
	"math"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/optim"
	"github.com/litcache/litcache/internal/testutil/trainfix"
)

// Fixture is the clip-tiny training fixture (internal/testutil/trainfix).
type Fixture = trainfix.Fixture

// LoadFixture reads the fixture; a missing file fails the test.
func LoadFixture(tb testing.TB) *Fixture { return trainfix.Load(tb) }

// Model is the LiT shape of a clip config (no image head: D = E).
func Model(cfg clip.Config) cuda.LiTModel {
	t := cfg.Text
	return cuda.LiTModel{Vocab: t.VocabSize, Context: t.ContextLength, Width: t.Width, Heads: t.Heads,
		Layers: t.Layers, Hidden: t.Hidden(), Embed: cfg.EmbedDim, Act: cfg.Act(), Eps: clip.LayerNormEps,
		ImageDim: cfg.EmbedDim}
}

// Params lists a host text tower's tensors (and logit_scale) as the
// trainer takes them, decay by OpenCLIP's rule.
func Params(tb testing.TB, text *clip.TextTower, logitScale float32) []cuda.LiTParam {
	tb.Helper()
	be := backend.NewCPU()
	var ps []cuda.LiTParam
	for _, p := range text.Params() {
		shape := append([]int(nil), p.Value.Shape()...)
		ps = append(ps, cuda.LiTParam{Name: p.Name, Shape: shape, Data: be.ToFloat32(p.Value, nil), Decay: optim.Decays(p.Name, shape)})
	}
	return append(ps, cuda.LiTParam{Name: "logit_scale", Shape: []int{1}, Data: []float32{logitScale}})
}

// RelL2 is ‖a−b‖/‖b‖.
func RelL2(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		x := float64(a[i]) - float64(b[i])
		d += x * x
		n += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / math.Max(n, 1e-300))
}

func relDiff(a, b float64) float64 { return math.Abs(a-b) / math.Max(math.Abs(b), 1e-30) }
