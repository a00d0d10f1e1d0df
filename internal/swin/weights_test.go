package swin

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/testutil"
	"github.com/litcache/litcache/internal/weights"
)

func tinyConfig() Config {
	return Config{PatchSize: 4, EmbedDim: 8, Depths: []int{2, 1}, NumHeads: []int{2, 2}, WindowSize: 2, MLPRatio: 4,
		NumClasses: 3, ImageSize: 16, ResizeSize: 18}
}

func tvTensors(c Config, seed uint64) weights.Map {
	rng := rand.New(rand.NewPCG(seed, 2))
	m := weights.Map{}
	for _, p := range c.params() {
		d := make([]float32, numel(p.shape))
		for i := range d {
			d[i] = float32(rng.NormFloat64())
		}
		m[p.name] = weights.Tensor{Name: p.name, Shape: p.shape, Data: d}
	}
	return m
}

// timmNames is tinyConfig's timm state dict spelled out by hand from timm's
// swin_transformer.py (not derived from the table under test): torchvision
// name → timm name, with the merging in stage 0 (timm < 0.9) or at the
// start of stage 1 (timm ≥ 0.9).
func timmNames(newDS bool) map[string]string {
	m := map[string]string{
		"features.0.0.weight": "patch_embed.proj.weight", "features.0.0.bias": "patch_embed.proj.bias",
		"features.0.2.weight": "patch_embed.norm.weight", "features.0.2.bias": "patch_embed.norm.bias",
		"norm.weight": "norm.weight", "norm.bias": "norm.bias",
	}
	for _, b := range []struct{ tv, timm string }{{"features.1.0.", "layers.0.blocks.0."}, {"features.1.1.", "layers.0.blocks.1."}, {"features.3.0.", "layers.1.blocks.0."}} {
		for _, n := range []struct{ tv, timm string }{
			{"norm1.weight", "norm1.weight"}, {"norm1.bias", "norm1.bias"},
			{"attn.qkv.weight", "attn.qkv.weight"}, {"attn.qkv.bias", "attn.qkv.bias"},
			{"attn.proj.weight", "attn.proj.weight"}, {"attn.proj.bias", "attn.proj.bias"},
			{"attn.relative_position_bias_table", "attn.relative_position_bias_table"},
			{"norm2.weight", "norm2.weight"}, {"norm2.bias", "norm2.bias"},
			{"mlp.0.weight", "mlp.fc1.weight"}, {"mlp.0.bias", "mlp.fc1.bias"},
			{"mlp.3.weight", "mlp.fc2.weight"}, {"mlp.3.bias", "mlp.fc2.bias"},
		} {
			m[b.tv+n.tv] = b.timm + n.timm
		}
	}
	ds := "layers.0.downsample."
	if newDS {
		ds = "layers.1.downsample."
	}
	m["features.2.reduction.weight"] = ds + "reduction.weight"
	m["features.2.norm.weight"] = ds + "norm.weight"
	m["features.2.norm.bias"] = ds + "norm.bias"
	return m
}

func encode(t *testing.T, be backend.Backend, c Config, src weights.Source) []float32 {
	t.Helper()
	m, err := Load(be, c, src, "fake")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	px := make([]float32, 2*3*c.ImageSize*c.ImageSize)
	rng := rand.New(rand.NewPCG(8, 8))
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	return m.Encode(px, 2)
}

// TestTimmNamesMapping: timm names (both downsample layouts, with heads and
// old timm's attn_mask buffers beside them) build the same model as
// torchvision's names.
func TestTimmNamesMapping(t *testing.T) {
	be := backend.NewCPU()
	c := tinyConfig()
	tv := tvTensors(c, 1)
	want := encode(t, be, c, tv)
	for _, newDS := range []bool{false, true} {
		timm := weights.Map{}
		for tvName, timmName := range timmNames(newDS) {
			x, ok := tv[tvName]
			if !ok {
				t.Fatalf("hand list names %s, which the model lacks", tvName)
			}
			timm[timmName] = weights.Tensor{Name: timmName, Shape: x.Shape, Data: x.Data}
		}
		for _, extra := range []string{"head.fc.weight", "layers.0.blocks.1.attn_mask"} {
			timm[extra] = weights.Tensor{Name: extra, Shape: []int{1}, Data: []float32{0}}
		}
		if got := encode(t, be, c, timm); !slices.Equal(got, want) {
			t.Errorf("timm names (new downsample %v) give other embeddings", newDS)
		}
		if len(timmNames(newDS)) != len(c.params()) {
			t.Errorf("hand list has %d names, the model %d tensors", len(timmNames(newDS)), len(c.params()))
		}
	}
}

// TestRelativePositionIndexChecked: a saved index that is not the window's
// is refused; the right one (as torchvision saves it) is accepted.
func TestRelativePositionIndexChecked(t *testing.T) {
	be := backend.NewCPU()
	c := tinyConfig()
	src := tvTensors(c, 2)
	idx := relativePositionIndex(c.WindowSize)
	f := make([]float32, len(idx))
	for i, v := range idx {
		f[i] = float32(v)
	}
	name := "features.1.0.attn.relative_position_index"
	src[name] = weights.Tensor{Name: name, Shape: []int{len(f)}, Data: f}
	if _, err := Load(be, c, src, "good"); err != nil {
		t.Fatal(err)
	}
	g := slices.Clone(f)
	g[1], g[2] = g[2], g[1]
	src[name] = weights.Tensor{Name: name, Shape: []int{len(g)}, Data: g}
	if _, err := Load(be, c, src, "bad"); err == nil || !strings.Contains(err.Error(), "relative_position_index") {
		t.Errorf("a wrong index: %v", err)
	}
}

// TestRelativePositionIndex against torchvision's formula written out for a
// 2×2 window (coords (0,0),(0,1),(1,0),(1,1); (Δh+1)·3 + Δw+1).
func TestRelativePositionIndex(t *testing.T) {
	want := []int{4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4}
	if got := relativePositionIndex(2); !slices.Equal(got, want) {
		t.Errorf("index %v, want %v", got, want)
	}
}

// TestShiftMask: torchvision's mask for a 4×4 map, window 2, shift 1:
// regions by rows [0,2), [2,3), [3,4) and the same by columns; the last
// window (rows 2–3, columns 2–3) holds four regions, the first one.
func TestShiftMask(t *testing.T) {
	m := shiftMask(4, 2, 1)
	if len(m) != 4*4*4 {
		t.Fatalf("%d values", len(m))
	}
	for i, v := range m[:16] {
		if v != 0 {
			t.Fatalf("first window: mask[%d] = %g, want 0", i, v)
		}
	}
	last := m[3*16:]
	for i := 0; i < 4; i++ {
		for j := 0; j < 4; j++ {
			want := float32(MaskValue)
			if i == j {
				want = 0
			}
			if last[i*4+j] != want {
				t.Errorf("last window: mask[%d][%d] = %g, want %g", i, j, last[i*4+j], want)
			}
		}
	}
}

func TestBuiltins(t *testing.T) {
	for name, dim := range map[string]int{"swin-t": 768, "swin-s": 768, "swin-b": 1024} {
		c, ok := Builtin(name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		if err := c.Validate(); err != nil || c.Dim() != dim || c.StageSide(0) != 56 || c.StageSide(3) != 7 {
			t.Errorf("%s: %v, dim %d, sides %d..%d", name, err, c.Dim(), c.StageSide(0), c.StageSide(3))
		}
		if _, shifts := c.window(7); shifts {
			t.Errorf("%s: the last stage (7×7, window 7) shifts", name)
		}
		back, err := ParseConfig(c.JSON())
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Errorf("%s: JSON round trip %+v, %v", name, back, err)
		}
	}
	if _, err := ParseConfig([]byte(`{"patch_size": [4, 2], "embed_dim": 8, "depths": [1], "num_heads": [1], "window_size": 2}`)); err == nil {
		t.Error("non-square patches accepted")
	}
	if _, err := ParseConfig([]byte(`{"embed_dim": 8, "depths": [1], "num_heads": [1], "window_size": 2, "block": "SwinTransformerBlockV2"}`)); err == nil {
		t.Error("an unknown key accepted")
	}
}

// TestTiny: the built-in swin-tiny has the shared fixture's shape
// (testdata/swin-tiny) at the demo's 64 px: 16×16 then 8×8, both shifted.
func TestTiny(t *testing.T) {
	c, ok := Builtin(TinyName)
	if !ok {
		t.Fatalf("no built-in %s", TinyName)
	}
	fix, _ := loadFixture(t, testutil.Testdata(t, "swin-tiny"))
	if c.PatchSize != fix.PatchSize || c.EmbedDim != fix.EmbedDim || !slices.Equal(c.Depths, fix.Depths) ||
		!slices.Equal(c.NumHeads, fix.NumHeads) || c.WindowSize != fix.WindowSize || c.MLPRatio != fix.MLPRatio {
		t.Errorf("%s %+v has not the fixture's shape %+v", TinyName, c, fix)
	}
	if err := c.Validate(); err != nil || c.ImageSize != 64 || c.StageSide(1) != 8 || c.Dim() != 64 {
		t.Errorf("%s: %v, %d px, last side %d, dim %d", TinyName, err, c.ImageSize, c.StageSide(1), c.Dim())
	}
	for i := range c.Depths {
		if _, shifts := c.window(c.StageSide(i)); !shifts {
			t.Errorf("stage %d (%d×%d) does not shift", i, c.StageSide(i), c.StageSide(i))
		}
	}
	if !slices.Contains(BuiltinNames(), TinyName) {
		t.Errorf("BuiltinNames %v lacks %s", BuiltinNames(), TinyName)
	}
}
