package clip

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/testutil"
)

func TestBuiltins(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		embed, vw, vl, heads, patch int
		tw, tl, theads              int
		quick                       bool
		tokens                      int
	}{
		{"ViT-B-32", 512, 768, 12, 12, 32, 512, 12, 8, false, 50},
		{"ViT-B-16", 512, 768, 12, 12, 16, 512, 12, 8, false, 197},
		{"ViT-L-14", 768, 1024, 24, 16, 14, 768, 12, 12, false, 257},
		{"ViT-L-14-quickgelu", 768, 1024, 24, 16, 14, 768, 12, 12, true, 257},
		{"clip-tiny", 32, 64, 2, 4, 8, 64, 2, 4, true, 17},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadConfig(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			v, x := c.Vision, c.Text
			got := []int{c.EmbedDim, v.Width, v.Layers, v.Heads(), v.PatchSize, x.Width, x.Layers, x.Heads, v.Tokens()}
			want := []int{tc.embed, tc.vw, tc.vl, tc.heads, tc.patch, tc.tw, tc.tl, tc.theads, tc.tokens}
			if !reflect.DeepEqual(got, want) || c.QuickGELU != tc.quick {
				t.Errorf("got %v quick %v, want %v quick %v", got, c.QuickGELU, want, tc.quick)
			}
			if x.ContextLength != 77 && tc.name != "clip-tiny" {
				t.Errorf("context %d", x.ContextLength)
			}
		})
	}
	if _, err := LoadConfig("ViT-H-99"); err == nil || !strings.Contains(err.Error(), "ViT-B-32") {
		t.Errorf("unknown name: %v (want the built-ins listed)", err)
	}
}

// TestClipTinyBuiltinMatchesFixture: the built-in equals testdata's config.
func TestClipTinyBuiltinMatchesFixture(t *testing.T) {
	c, err := LoadConfig(testutil.Testdata(t, "clip-tiny/open_clip_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Builtin("clip-tiny")
	if !reflect.DeepEqual(c, b) {
		t.Errorf("file %+v, built-in %+v", c, b)
	}
}

func TestParseConfig(t *testing.T) {
	b16, _ := Builtin("ViT-B-16")
	tiny, _ := Builtin("clip-tiny")
	for _, tc := range []struct {
		name    string
		json    string
		want    Config
		wantErr string
	}{
		// OpenCLIP's ViT-B-16.json verbatim: head_width and mlp_ratio defaulted.
		{"openclip ViT-B-16", `{"embed_dim": 512, "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 16},
			"text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}}`, b16, ""},
		{"hub form", `{"model_cfg": ` + string(tiny.JSON()) + `, "preprocess_cfg": {"mean": [0.5,0.5,0.5]}}`, tiny, ""},
		{"canonical JSON", string(tiny.JSON()), tiny, ""},
		{"HF config.json", `{"projection_dim": 32,
			"vision_config": {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 32, "patch_size": 8, "hidden_act": "quick_gelu"},
			"text_config": {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 16, "vocab_size": 512, "hidden_act": "quick_gelu"}}`, tiny, ""},
		{"square image_size pair", `{"embed_dim": 512, "vision_cfg": {"image_size": [224, 224], "layers": 12, "width": 768, "patch_size": 16},
			"text_cfg": {"width": 512, "heads": 8, "layers": 12}}`, b16, ""},
		{"resnet", `{"embed_dim": 1024, "vision_cfg": {"image_size": 224, "layers": [3,4,6,3], "width": 64}, "text_cfg": {"width": 512, "heads": 8, "layers": 12}}`, Config{}, "ResNet"},
		{"timm", `{"embed_dim": 512, "vision_cfg": {"timm_model_name": "convnext_base"}, "text_cfg": {"width": 512, "heads": 8, "layers": 12}}`, Config{}, "timm"},
		{"hf text", `{"embed_dim": 512, "vision_cfg": {"width": 768, "layers": 12}, "text_cfg": {"hf_model_name": "roberta-base"}}`, Config{}, "roberta"},
		{"layer scale", `{"embed_dim": 512, "vision_cfg": {"width": 768, "layers": 12, "ls_init_value": 0.1}, "text_cfg": {"width": 512, "heads": 8, "layers": 12}}`, Config{}, "LayerScale"},
		{"bad heads", `{"embed_dim": 512, "vision_cfg": {"width": 768, "layers": 12}, "text_cfg": {"width": 512, "heads": 7, "layers": 12}}`, Config{}, "text_cfg.heads 7"},
		{"bad patch", `{"embed_dim": 512, "vision_cfg": {"width": 768, "layers": 12, "patch_size": 15}, "text_cfg": {"width": 512, "heads": 8, "layers": 12}}`, Config{}, "patch_size 15"},
		{"no embed", `{"vision_cfg": {"width": 768, "layers": 12}, "text_cfg": {"width": 512, "heads": 8, "layers": 12}}`, Config{}, "embed_dim"},
		{"not json", `{"embed_dim": `, Config{}, "clip: model config"},
		{"wrong type", `{"embed_dim": "big"}`, Config{}, "clip: model config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tc.json))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	_, err := ParseConfig([]byte(`{"embed_dim": 512, "vision_cfg": {"timm_model_name": "x"}}`))
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("timm: %v is not ErrUnsupported", err)
	}
}

func TestLoadConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"embed_dim": 0}`), 0o644)
	if _, err := LoadConfig(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("error %v does not name the file", err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "absent.json")); err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("error %v does not name the file", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	tiny, _ := Builtin("clip-tiny")
	for _, s := range []string{
		string(tiny.JSON()),
		`{"model_cfg": {"embed_dim": 8, "vision_cfg": {"width": 8, "layers": 1, "head_width": 4, "image_size": 4, "patch_size": 2}, "text_cfg": {"width": 8, "heads": 2, "layers": 1}}}`,
		`{"projection_dim": 8, "vision_config": {"hidden_size": 8}, "text_config": {}}`,
		`{"vision_cfg": {"layers": [1,2]}}`,
		`{"vision_cfg": {"image_size": [2, 3]}}`,
		`{"model_cfg": {"model_cfg": {}}}`,
		`[]`, `null`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		// An accepted config is consistent and round-trips through its canonical JSON.
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		back, err := ParseConfig(c.JSON())
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("canonical JSON does not round-trip: %+v → %+v (%v)", c, back, err)
		}
	})
}

func TestDefaultLogitScale(t *testing.T) {
	if d := DefaultLogitScale - math.Log(1/0.07); math.Abs(d) > 1e-15 {
		t.Errorf("DefaultLogitScale off by %g", d)
	}
}

func TestVisionBytesPerImage(t *testing.T) {
	cfg, ok := Builtin("ViT-L-14")
	if !ok {
		t.Fatal("no ViT-L-14")
	}
	// 257 tokens, width 1024, MLP 4096, 16 heads: 2·257·(8·1024+4096) bf16 bytes
	// of activations plus 2·4·16·257² bytes of float32 scores and probabilities.
	want := int64(2*257*(8*1024+4096) + 2*4*16*257*257)
	if got := cfg.VisionBytesPerImage(2); got != want {
		t.Fatalf("ViT-L-14: %d bytes per image, want %d", got, want)
	}
}
