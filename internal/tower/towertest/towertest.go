// Package towertest checks a backend's DINOv2 and Swin towers against the
// parity fixtures (testdata/dinov2-tiny*, testdata/swin-tiny*, or the
// directories $LITCACHE_DINOV2_FIXTURE_DIR and $LITCACHE_SWIN_FIXTURE_DIR
// name): the pooled embeddings, every pooling, at every input size a
// fixture holds, as the GPU check asks of bf16 (issue 18: 2e-2 relative).
// cuda/towers runs it on a GPU, cuda/emu on the CPU emulator of one; the
// families' own tests check the float32 CPU against every tensor.
package towertest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/dinov2"
	"github.com/litcache/litcache/internal/swin"
	"github.com/litcache/litcache/internal/testutil"
	"github.com/litcache/litcache/internal/testutil/parity"
)

// dirs is the directory $env names, or the fixtures in testdata; a missing
// one fails the test.
func dirs(t *testing.T, env string, defaults ...string) []string {
	t.Helper()
	if d := os.Getenv(env); d != "" {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		return []string{d}
	}
	var out []string
	for _, d := range defaults {
		out = append(out, testutil.Testdata(t, d))
	}
	return out
}

func check(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	e := parity.RelErr(got, want)
	t.Logf("%s: relative error %.3g", what, e)
	if !(e <= tol) {
		t.Errorf("%s: relative error %.3g > %g", what, e, tol)
	}
}

// Check runs every DINOv2 and Swin fixture's tower on be and compares the
// pooled embeddings with the fixture's float64 ones, within tol relative.
func Check(t *testing.T, be backend.Backend, tol float64) {
	for _, dir := range dirs(t, "LITCACHE_DINOV2_FIXTURE_DIR", "dinov2-tiny", "dinov2-tiny-swiglu") {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkDINOv2(t, be, dir, tol) })
	}
	for _, dir := range dirs(t, "LITCACHE_SWIN_FIXTURE_DIR", "swin-tiny", "swin-tiny-pad") {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkSwin(t, be, dir, tol) })
	}
}

// checkDINOv2: at each input size of generator_config.json, cls is
// x_norm_clstoken, mean the float64 mean of x_norm_patchtokens, cls+mean both.
func checkDINOv2(t *testing.T, be backend.Backend, dir string, tol float64) {
	raw, err := os.ReadFile(filepath.Join(dir, "generator_config.json"))
	if err != nil {
		t.Fatalf("reference file: %v", err)
	}
	var gen struct {
		Inputs map[string]int `json:"inputs"`
	}
	if err := json.Unmarshal(raw, &gen); err != nil || len(gen.Inputs) == 0 {
		t.Fatalf("generator_config.json: inputs %v, %v", gen.Inputs, err)
	}
	cfg, err := dinov2.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	fwd := parity.Open(t, filepath.Join(dir, "forward.safetensors"))
	tags := make([]string, 0, len(gen.Inputs))
	for tag := range gen.Inputs {
		tags = append(tags, tag)
	}
	sort.Strings(tags)
	for _, tag := range tags {
		c := cfg
		c.ImageSize = gen.Inputs[tag]
		c.ResizeSize = max(c.ResizeSize, c.ImageSize)
		m, err := dinov2.LoadFile(be, c, filepath.Join(dir, "weights.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		px, ps := parity.Float64(t, fwd, tag+".pixel_values")
		B := ps[0]
		cls, _ := parity.Float64(t, fwd, tag+".x_norm_clstoken")
		patches, _ := parity.Float64(t, fwd, tag+".x_norm_patchtokens")
		C := c.EmbedDim
		P := len(patches) / (B * C)
		mean := make([]float64, B*C)
		for b := range B {
			for p := range P {
				for k := range C {
					mean[b*C+k] += patches[(b*P+p)*C+k] / float64(P)
				}
			}
		}
		both := make([]float64, 0, 2*B*C)
		for b := range B {
			both = append(append(both, cls[b*C:(b+1)*C]...), mean[b*C:(b+1)*C]...)
		}
		for _, p := range []struct {
			pool string
			want []float64
		}{{dinov2.PoolCLS, cls}, {dinov2.PoolMean, mean}, {dinov2.PoolCLSMean, both}} {
			check(t, tag+" "+p.pool, m.Encode(parity.ToFloat32(px), B, p.pool), p.want, tol)
		}
		m.Free()
	}
}

// checkSwin: the embedding is pooled (the final norm, then the average).
func checkSwin(t *testing.T, be backend.Backend, dir string, tol float64) {
	raw, err := os.ReadFile(filepath.Join(dir, "generator_config.json"))
	if err != nil {
		t.Fatalf("reference file: %v", err)
	}
	cfg, err := swin.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	m, err := swin.LoadFile(be, cfg, filepath.Join(dir, "weights.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	fwd := parity.Open(t, filepath.Join(dir, "forward.safetensors"))
	px, ps := parity.Float64(t, fwd, "pixel_values")
	want, _ := parity.Float64(t, fwd, "pooled")
	check(t, "pooled", m.Encode(parity.ToFloat32(px), ps[0]), want, tol)
}
