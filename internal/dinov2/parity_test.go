package dinov2

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/testutil"
	"github.com/litcache/litcache/internal/testutil/parity"
)

// The fixture (testdata/dinov2-tiny, or $LITCACHE_DINOV2_FIXTURE_DIR for
// another directory of the same kind) comes from Meta's own model code
// (facebookresearch/dinov2 at 9c7e324, DinoVisionTransformer) on PyTorch 1.13
// CPU in float64, every parameter randomised (LayerScale gammas, biases, norm
// gains, cls_token, pos_embed, register_tokens, mask_token). FIXTURES.md:
//   - generator_config.json: "model" holds the constructor's arguments (the
//     tiny one: image 56, patch 14, width 64, 2 blocks, 4 heads, MLP 4× GELU,
//     LayerScale, 4 registers, interpolate_offset 0.1, no antialias),
//     "inputs" the input sizes by tag, "batch" the batch;
//   - weights.safetensors: float32 weights under Meta's names;
//   - forward.safetensors: per tag, pixel_values (B,3,S,S), x_norm_clstoken
//     (B,C), x_norm_regtokens (B,R,C), x_norm_patchtokens (B,P,C),
//     x_prenorm (B,1+R+P,C; cls, registers, patches) and pos_embed_used
//     (1,1+P,C). "native" runs at the trained size (the table as trained),
//     "interp" at 42 px: the table resized by bicubic interpolation in
//     float32 with scale factor (3 + 0.1)/4.
//
// Tolerances: float32 arithmetic on float32 weights against float64, 1e-5
// relative (‖a−b‖/‖b‖) as FIXTURES.md expects; measured (go test -v -run
// Parity ./internal/dinov2/): see the t.Logf lines, 1e-7 .. 4e-7 on the tiny
// fixture. A swapped q/k, a wrong LayerScale or a position table off by one
// row gives errors of order 1e-2 .. 1. pos_embed_used is float32 in the
// reference too (interpolate_pos_encoding computes in float32) and must be
// equal bit for bit.
const forwardTol = 1e-5

// fixtureDirs is $LITCACHE_DINOV2_FIXTURE_DIR, or the fixtures in testdata:
// dinov2-tiny (the shared one) and dinov2-tiny-swiglu (generated here by the
// same generator with Meta's code: the SwiGLU FFN, block_chunks 2 names,
// registers, antialiased resizing with offset 0 — ViT-g/14-reg's options).
func fixtureDirs(t *testing.T) []string {
	t.Helper()
	return testutil.FixtureDirs(t, "LITCACHE_DINOV2_FIXTURE_DIR", "dinov2-tiny", "dinov2-tiny-swiglu")
}

// eachFixture runs fn on every fixture directory as a subtest.
func eachFixture(t *testing.T, fn func(t *testing.T, dir string, cfg Config, gen generatorConfig)) {
	for _, dir := range fixtureDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg, gen := loadFixture(t, dir)
			fn(t, dir, cfg, gen)
		})
	}
}

// generatorConfig is the fixture's generator_config.json.
type generatorConfig struct {
	Model  json.RawMessage `json:"model"`
	Batch  int             `json:"batch"`
	Inputs map[string]int  `json:"inputs"`
}

func loadFixture(t *testing.T, dir string) (cfg Config, gen generatorConfig) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "generator_config.json"))
	if err != nil {
		t.Fatalf("reference file: %v", err)
	}
	if err := json.Unmarshal(raw, &gen); err != nil {
		t.Fatal(err)
	}
	if len(gen.Inputs) == 0 || gen.Batch <= 0 {
		t.Fatalf("generator_config.json names no inputs or batch")
	}
	if cfg, err = ParseConfig(gen.Model); err != nil {
		t.Fatal(err)
	}
	return cfg, gen
}

// rows returns rows [lo,hi) of each image's T tokens from x (B·T, C).
func rows(x []float32, B, T, C, lo, hi int) []float32 {
	var out []float32
	for b := 0; b < B; b++ {
		out = append(out, x[(b*T+lo)*C:(b*T+hi)*C]...)
	}
	return out
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
	checked := map[string]bool{}
	tags := make([]string, 0, len(gen.Inputs))
	for tag := range gen.Inputs {
		tags = append(tags, tag)
	}
	sort.Strings(tags)
	for _, tag := range tags {
		S := gen.Inputs[tag]
		t.Run(tag, func(t *testing.T) {
			px, ps := parity.Float64(t, fwd, tag+".pixel_values")
			checked[tag+".pixel_values"] = true
			B, C, R := ps[0], cfg.EmbedDim, cfg.NumRegisterTokens
			if B != gen.Batch || ps[2] != S || ps[3] != S {
				t.Fatalf("pixel_values %v, generator_config says batch %d at %d px", ps, gen.Batch, S)
			}
			g := S / cfg.PatchSize
			T := 1 + R + g*g
			var posUsed []float32
			var prenorm []float32
			x := m.forward(parity.ToFloat32(px), B, S, func(name string, x backend.Tensor, host []float32) {
				switch name {
				case "pos_embed_used":
					posUsed = host
				case "x_prenorm":
					prenorm = be.ToFloat32(x, nil)
				}
			})
			defer be.Free(x)
			normed := be.Zeros(B*T, C)
			be.LayerNorm(normed, x, m.normG, m.normB, LayerNormEps, nil, nil)
			xn := be.ToFloat32(normed, nil)

			// The position table: bit for bit.
			want, _ := parity.Float64(t, fwd, tag+".pos_embed_used")
			checked[tag+".pos_embed_used"] = true
			if len(want) != len(posUsed) {
				t.Fatalf("pos_embed_used: %d values, want %d", len(posUsed), len(want))
			}
			diff := 0
			for i, v := range posUsed {
				if float64(v) != want[i] {
					diff++
				}
			}
			if diff > 0 {
				t.Errorf("pos_embed_used: %d of %d values differ from the reference's float32 (want every bit equal); relative error %.3g",
					diff, len(want), parity.RelErr(posUsed, want))
			}
			t.Logf("pos_embed_used: %d values, %d differ, relative error %.3g", len(want), diff, parity.RelErr(posUsed, want))

			outputs := map[string][]float32{
				"x_prenorm":          prenorm,
				"x_norm_clstoken":    rows(xn, B, T, C, 0, 1),
				"x_norm_patchtokens": rows(xn, B, T, C, 1+R, T),
			}
			if R > 0 {
				outputs["x_norm_regtokens"] = rows(xn, B, T, C, 1, 1+R)
			}
			for name, got := range outputs {
				want, _ := parity.Float64(t, fwd, tag+"."+name)
				checked[tag+"."+name] = true
				e := parity.RelErr(got, want)
				t.Logf("%s: relative error %.3g", name, e)
				if e > forwardTol || math.IsNaN(e) {
					t.Errorf("%s: relative error %.3g > %g", name, e, forwardTol)
				}
			}
			checkPools(t, m, x, B, S, fwd, tag)
		})
	}
	for _, n := range fwd.Names() {
		if !checked[n] {
			t.Errorf("forward.safetensors holds %s, which no check compares", n)
		}
	}
}

// checkPools compares the three poolings with the fixture's normed tokens:
// cls is x_norm_clstoken, mean the float64 mean of x_norm_patchtokens.
func checkPools(t *testing.T, m *Model, x backend.Tensor, B, S int, fwd *safetensors.File, tag string) {
	t.Helper()
	C := m.cfg.EmbedDim
	cls, _ := parity.Float64(t, fwd, tag+".x_norm_clstoken")
	patch, ps := parity.Float64(t, fwd, tag+".x_norm_patchtokens")
	P := ps[1]
	mean := make([]float64, B*C)
	for b := 0; b < B; b++ {
		for p := 0; p < P; p++ {
			for c := 0; c < C; c++ {
				mean[b*C+c] += patch[(b*P+p)*C+c] / float64(P)
			}
		}
	}
	both := make([]float64, 0, 2*B*C)
	for b := 0; b < B; b++ {
		both = append(append(both, cls[b*C:(b+1)*C]...), mean[b*C:(b+1)*C]...)
	}
	for pool, want := range map[string][]float64{PoolCLS: cls, PoolMean: mean, PoolCLSMean: both} {
		got := m.pool(x, B, S, pool)
		if len(got) != B*m.cfg.Dim(pool) {
			t.Errorf("pool %s: %d values, want %d", pool, len(got), B*m.cfg.Dim(pool))
			continue
		}
		e := parity.RelErr(got, want)
		t.Logf("pool %s: relative error %.3g", pool, e)
		if e > forwardTol || math.IsNaN(e) {
			t.Errorf("pool %s: relative error %.3g > %g", pool, e, forwardTol)
		}
	}
}

// TestEncodeIsForwardAndPool: Encode at the config's size is forward then pool.
func TestEncodeIsForwardAndPool(t *testing.T) { eachFixture(t, encodeIsForwardAndPool) }

func encodeIsForwardAndPool(t *testing.T, dir string, cfg Config, gen generatorConfig) {
	be := backend.NewCPU()
	m, err := LoadFile(be, cfg, filepath.Join(dir, "weights.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	fwd := parity.Open(t, filepath.Join(dir, "forward.safetensors"))
	for tag, S := range gen.Inputs {
		if S != cfg.ImageSize {
			continue
		}
		px, _ := parity.Float64(t, fwd, tag+".pixel_values")
		cls, _ := parity.Float64(t, fwd, tag+".x_norm_clstoken")
		got := m.Encode(parity.ToFloat32(px), gen.Batch, PoolCLS)
		if e := parity.RelErr(got, cls); e > forwardTol {
			t.Errorf("Encode cls: relative error %.3g > %g", e, forwardTol)
		}
		return
	}
	t.Fatalf("no input of the fixture runs at image_size %d (inputs %v)", cfg.ImageSize, gen.Inputs)
}
