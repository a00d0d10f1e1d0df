package dinov2

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/testutil"
)

// TestBuiltins: torch.hub's shapes (dinov2/hub/backbones.py, vision_transformer.py).
func TestBuiltins(t *testing.T) {
	want := map[string]struct{ dim, depth, heads, hidden, regs int }{
		"dinov2-vits14": {384, 12, 6, 1536, 0}, "dinov2-vitb14": {768, 12, 12, 3072, 0},
		"dinov2-vitl14": {1024, 24, 16, 4096, 0}, "dinov2-vitg14": {1536, 40, 24, 4096, 0},
		"dinov2-vits14-reg": {384, 12, 6, 1536, 4}, "dinov2-vitb14-reg": {768, 12, 12, 3072, 4},
		"dinov2-vitl14-reg": {1024, 24, 16, 4096, 4}, "dinov2-vitg14-reg": {1536, 40, 24, 4096, 4},
	}
	if names := BuiltinNames(); len(names) != len(want)+1 { // + TinyName (TestTiny)
		t.Errorf("built-ins %v", names)
	}
	for name, w := range want {
		c, ok := Builtin(name)
		if !ok {
			t.Fatalf("no built-in %s", name)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if c.EmbedDim != w.dim || c.Depth != w.depth || c.NumHeads != w.heads || c.Hidden() != w.hidden || c.NumRegisterTokens != w.regs {
			t.Errorf("%s: dim %d depth %d heads %d hidden %d registers %d", name, c.EmbedDim, c.Depth, c.NumHeads, c.Hidden(), c.NumRegisterTokens)
		}
		if c.ImgSize != 518 || c.PatchSize != 14 || c.ImageSize != 224 || c.ResizeSize != 256 || c.InitValues != 1 || c.Grid() != 37 || c.RunGrid() != 16 {
			t.Errorf("%s: trained %d patch %d run %d resize %d ls %g", name, c.ImgSize, c.PatchSize, c.ImageSize, c.ResizeSize, c.InitValues)
		}
		reg := strings.HasSuffix(name, "-reg")
		if c.InterpolateAntialias != reg || (c.InterpolateOffset == 0) != reg {
			t.Errorf("%s: antialias %v offset %g", name, c.InterpolateAntialias, c.InterpolateOffset)
		}
		if (c.FFNLayer == FFNSwiGLU) != strings.HasPrefix(name, "dinov2-vitg14") {
			t.Errorf("%s: ffn %s", name, c.FFNLayer)
		}
		if c.Dim(PoolCLSMean) != 2*w.dim || c.Dim(PoolCLS) != w.dim {
			t.Errorf("%s: pooled dims %d, %d", name, c.Dim(PoolCLS), c.Dim(PoolCLSMean))
		}
		if c.Tokens() != 1+w.regs+256 {
			t.Errorf("%s: %d tokens at 224", name, c.Tokens())
		}
		back, err := ParseConfig(c.JSON())
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Errorf("%s: JSON round trip gives %+v, %v", name, back, err)
		}
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model": {"img_size": 56, "patch_size": 14, "embed_dim": 64, "depth": 2, "num_heads": 4,
		"init_values": null, "block_chunks": 0, "drop_path_rate": 0.1}, "batch": 3}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.LayerScale() || c.ImageSize != 56 || c.ResizeSize != 64 || c.FFNLayer != FFNMLP || !c.QKVBias || c.InterpolateOffset != 0.1 {
		t.Errorf("parsed %+v", c)
	}
	if _, err := ParseConfig([]byte(`{"embed_dim": 64, "depth": 2, "num_heads": 4, "patch_size": 14, "img_size": 56, "qk_norm": true}`)); err == nil {
		t.Error("an unknown key (qk_norm) accepted")
	}
	if _, err := ParseConfig([]byte(`{"embed_dim": 64, "depth": 2, "num_heads": 4, "patch_size": 14, "img_size": 56, "ffn_layer": "identity"}`)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ffn_layer identity: %v", err)
	}
	if _, err := ParseConfig([]byte(`{"embed_dim": 64, "depth": 2, "num_heads": 5, "patch_size": 14, "img_size": 56}`)); err == nil || !strings.Contains(err.Error(), "num_heads") {
		t.Errorf("5 heads of 64: %v", err)
	}
	hf, err := ParseConfig([]byte(`{"model_type": "dinov2_with_registers", "hidden_size": 768, "num_hidden_layers": 12,
		"num_attention_heads": 12, "mlp_ratio": 4, "image_size": 518, "patch_size": 14, "num_register_tokens": 4, "layerscale_value": 1.0}`))
	if want, _ := Builtin("dinov2-vitb14-reg"); err != nil || !reflect.DeepEqual(hf, want) {
		t.Errorf("HF dinov2_with_registers config: %+v, %v; want the hub's %+v", hf, err, want)
	}
	if _, err := ParseConfig([]byte(`{"model_type": "vit"}`)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("model_type vit: %v", err)
	}
	if _, err := LoadConfig("dinov2-vitz14"); err == nil || !strings.Contains(err.Error(), "dinov2-vits14") {
		t.Errorf("unknown name: %v", err)
	}
}

// TestTiny: the built-in dinov2-tiny has the shared fixture's shape
// (testdata/dinov2-tiny's generator_config.json) and runs at 56 px after a
// resize to 64, DINOv2's 224/256 ratio.
func TestTiny(t *testing.T) {
	c, ok := Builtin(TinyName)
	if !ok {
		t.Fatalf("no built-in %s", TinyName)
	}
	fix, _ := loadFixture(t, testutil.Testdata(t, "dinov2-tiny"))
	if c.PatchSize != fix.PatchSize || c.EmbedDim != fix.EmbedDim || c.Depth != fix.Depth || c.NumHeads != fix.NumHeads ||
		c.Hidden() != fix.Hidden() || c.NumRegisterTokens != fix.NumRegisterTokens || c.FFNLayer != fix.FFNLayer || c.ImgSize != fix.ImgSize {
		t.Errorf("%s %+v has not the fixture's shape %+v", TinyName, c, fix)
	}
	if err := c.Validate(); err != nil || c.ImageSize != 56 || c.ResizeSize != 64 || c.InitValues != 1 {
		t.Errorf("%s: %v, run at %d after %d, LayerScale %g", TinyName, err, c.ImageSize, c.ResizeSize, c.InitValues)
	}
	if !slices.Contains(BuiltinNames(), TinyName) {
		t.Errorf("BuiltinNames %v lacks %s", BuiltinNames(), TinyName)
	}
	back, err := ParseConfig(c.JSON())
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Errorf("JSON round trip gives %+v, %v", back, err)
	}
}
