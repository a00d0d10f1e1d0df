package swin

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/testutil"
	"github.com/litcache/litcache/internal/testutil/parity"
)

// The fixture (testdata/swin-tiny, or $LITCACHE_SWIN_FIXTURE_DIR for another
// directory of the same kind) comes from torchvision 0.14's SwinTransformer
// (v1) on PyTorch 1.13 CPU in float64, every parameter randomised.
// FIXTURES.md:
//   - generator_config.json: "model" holds the constructor's arguments (the
//     tiny one: patch 4, embed 32, depths [2,2], heads [2,4], window 4,
//     10 classes), "image_size" the input side (32: 8×8 tokens, then 4×4
//     after patch merging; stage 1's second block uses the shifted window and
//     its mask; in stage 2 the window covers the map and torchvision does
//     not shift), "batch" the batch;
//   - weights.safetensors: float32 under torchvision's names, with the
//     relative_position_index buffers;
//   - forward.safetensors: pixel_values, features.i (each features stage's
//     output, (B,H,W,C)), pooled (after norm and the average pool: the
//     embedding) and logits (the head on pooled).
//
// Tolerance: float32 against float64, 1e-5 relative as FIXTURES.md expects;
// measured (go test -v -run Parity ./internal/swin/): see the t.Logf lines,
// ~1e-7 .. 3e-7. A shift in the wrong direction, a mask on the unshifted
// block or a transposed bias table gives errors of order 1e-2 .. 1.
const forwardTol = 1e-5

// fixtureDirs is $LITCACHE_SWIN_FIXTURE_DIR, or the fixtures in testdata:
// swin-tiny (the shared one) and swin-tiny-pad (generated here by the same
// generator: 40 px, three stages, so the 10×10 and 5×5 maps are padded to
// the window, both shift, and the 5×5 map is padded for the merging).
func fixtureDirs(t *testing.T) []string {
	t.Helper()
	return testutil.FixtureDirs(t, "LITCACHE_SWIN_FIXTURE_DIR", "swin-tiny", "swin-tiny-pad")
}

func eachFixture(t *testing.T, fn func(t *testing.T, dir string, cfg Config, gen generatorConfig)) {
	for _, dir := range fixtureDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg, gen := loadFixture(t, dir)
			fn(t, dir, cfg, gen)
		})
	}
}

type generatorConfig struct {
	Batch     int `json:"batch"`
	ImageSize int `json:"image_size"`
}

func loadFixture(t *testing.T, dir string) (Config, generatorConfig) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "generator_config.json"))
	if err != nil {
		t.Fatalf("reference file: %v", err)
	}
	var gen generatorConfig
	if err := json.Unmarshal(raw, &gen); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	if gen.Batch <= 0 || gen.ImageSize != cfg.ImageSize {
		t.Fatalf("generator_config.json: batch %d, image_size %d (config %d)", gen.Batch, gen.ImageSize, cfg.ImageSize)
	}
	return cfg, gen
}

func TestForwardParity(t *testing.T) { eachFixture(t, forwardParity) }

func forwardParity(t *testing.T, dir string, cfg Config, gen generatorConfig) {
	be := backend.NewCPU()
	m, err := LoadFile(be, cfg, filepath.Join(dir, "weights.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	fwd := parity.Open(t, filepath.Join(dir, "forward.safetensors"))
	px, ps := parity.Float64(t, fwd, "pixel_values")
	B := ps[0]
	if B != gen.Batch {
		t.Fatalf("pixel_values %v, generator_config says batch %d", ps, gen.Batch)
	}
	got := map[string][]float32{}
	x, s := m.forward(parity.ToFloat32(px), B, func(name string, x backend.Tensor) { got[name] = be.ToFloat32(x, nil) })
	got["pooled"] = m.pool(x, B, s)
	be.Free(x)
	// logits: the classifier head, which the tower leaves out, on the pooled embedding.
	wf := parity.Open(t, filepath.Join(dir, "weights.safetensors"))
	hw, hs, err := wf.Float32("head.weight")
	if err != nil {
		t.Fatal(err)
	}
	hb, _, err := wf.Float32("head.bias")
	if err != nil {
		t.Fatal(err)
	}
	logits := be.Zeros(B, hs[0])
	be.Linear(logits, be.FromFloat32(got["pooled"], B, cfg.Dim()), be.FromFloat32(hw, hs...), be.FromFloat32(hb, hs[0]), backend.ActNone)
	got["logits"] = be.ToFloat32(logits, nil)

	stages := 2*len(cfg.Depths) - 1
	if n := len(got) - 2; n != stages+1 {
		t.Fatalf("forward saw %d features stages, want %d", n, stages+1)
	}
	checked := map[string]bool{"pixel_values": true}
	for name, g := range got {
		want, shape := parity.Float64(t, fwd, name)
		checked[name] = true
		e := parity.RelErr(g, want)
		t.Logf("%s %v: relative error %.3g", name, shape, e)
		if e > forwardTol || math.IsNaN(e) {
			t.Errorf("%s: relative error %.3g > %g", name, e, forwardTol)
		}
	}
	for _, n := range fwd.Names() {
		if !checked[n] {
			t.Errorf("forward.safetensors holds %s, which no check compares", n)
		}
	}
	for i := 0; i <= stages; i++ {
		if !checked[fmt.Sprintf("features.%d", i)] {
			t.Errorf("features.%d not compared", i)
		}
	}
}

// TestEncodeIsForwardAndPool: Encode is forward then the pooled embedding.
func TestEncodeIsForwardAndPool(t *testing.T) { eachFixture(t, encodeIsForwardAndPool) }

func encodeIsForwardAndPool(t *testing.T, dir string, cfg Config, gen generatorConfig) {
	be := backend.NewCPU()
	m, err := LoadFile(be, cfg, filepath.Join(dir, "weights.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	fwd := parity.Open(t, filepath.Join(dir, "forward.safetensors"))
	px, _ := parity.Float64(t, fwd, "pixel_values")
	want, _ := parity.Float64(t, fwd, "pooled")
	if e := parity.RelErr(m.Encode(parity.ToFloat32(px), gen.Batch), want); e > forwardTol {
		t.Errorf("Encode: relative error %.3g > %g", e, forwardTol)
	}
}
