// Package clip holds the CLIP towers written against internal/backend: the ViT
// image tower, the causal text transformer, their OpenCLIP model configs,
// weight import from OpenCLIP and HF transformers names, export with OpenCLIP
// names, and the symmetric contrastive (InfoNCE) loss LiT tuning trains with
// (LiT: lock the image tower, tune the text tower — arXiv 2111.07991).
//
// Letters used in shape comments: B batch, T tokens, C (or W) width, H heads,
// D head width, E embedding dim, V vocab, S image side, P patch side,
// G = S/P patches per side, N rows (B·T).
package clip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/weights"
)

// LayerNormEps is the LayerNorm epsilon of every CLIP layer norm (PyTorch's default).
const LayerNormEps = 1e-5

// ErrUnsupported is returned (wrapped) for a model config asking for a feature
// these towers do not implement (ResNet or timm image towers, HF text models,
// LayerScale, attentional pooling, ...).
var ErrUnsupported = errors.New("clip: unsupported model")

// Config is an OpenCLIP model config: the shapes of both towers.
type Config struct {
	// EmbedDim is the joint embedding size both towers project to.
	EmbedDim int `json:"embed_dim"`
	// Vision is the image tower.
	Vision VisionConfig `json:"vision_cfg"`
	// Text is the text tower.
	Text TextConfig `json:"text_cfg"`
	// QuickGELU selects x·sigmoid(1.702x) (OpenAI's weights) instead of exact GELU.
	QuickGELU bool `json:"quick_gelu"`
}

// VisionConfig is OpenCLIP's vision_cfg for a ViT.
type VisionConfig struct {
	ImageSize int     `json:"image_size"`
	PatchSize int     `json:"patch_size"`
	Width     int     `json:"width"`
	Layers    int     `json:"layers"`
	HeadWidth int     `json:"head_width"`
	MLPRatio  float64 `json:"mlp_ratio"`
}

// TextConfig is OpenCLIP's text_cfg for the CLIP text transformer.
type TextConfig struct {
	ContextLength int     `json:"context_length"`
	VocabSize     int     `json:"vocab_size"`
	Width         int     `json:"width"`
	Heads         int     `json:"heads"`
	Layers        int     `json:"layers"`
	MLPRatio      float64 `json:"mlp_ratio"`
}

// Heads is the number of attention heads of the image tower (width / head_width).
func (v VisionConfig) Heads() int { return v.Width / v.HeadWidth }

// Grid is the number of patches per image side (image_size / patch_size).
func (v VisionConfig) Grid() int { return v.ImageSize / v.PatchSize }

// Tokens is the image tower's sequence length: one class token plus the patches.
func (v VisionConfig) Tokens() int { return v.Grid()*v.Grid() + 1 }

// Hidden is the MLP's inner width (width · mlp_ratio).
func (v VisionConfig) Hidden() int { return mlpWidth(v.Width, v.MLPRatio) }

// Hidden is the MLP's inner width (width · mlp_ratio).
func (t TextConfig) Hidden() int { return mlpWidth(t.Width, t.MLPRatio) }

// mlpWidth truncates width·ratio as OpenCLIP's int() does; the small nudge
// keeps a ratio derived from an HF config (intermediate/hidden) from landing
// one below the integer it came from.
func mlpWidth(width int, ratio float64) int { return int(float64(width)*ratio + 1e-6) }

// EOT is the end-of-text id the text tower pools at: the vocabulary's last id
// (49407 for CLIP's BPE, 511 for clip-tiny).
func (t TextConfig) EOT() int32 { return int32(t.VocabSize - 1) }

// Act is the MLP activation of both towers.
func (c Config) Act() backend.Act {
	if c.QuickGELU {
		return backend.ActQuickGELU
	}
	return backend.ActGELU
}

// withDefaults fills the fields OpenCLIP's dataclasses default.
func (c Config) withDefaults() Config {
	if c.Vision.HeadWidth == 0 {
		c.Vision.HeadWidth = 64
	}
	if c.Vision.MLPRatio == 0 {
		c.Vision.MLPRatio = 4
	}
	if c.Vision.PatchSize == 0 {
		c.Vision.PatchSize = 16
	}
	if c.Vision.ImageSize == 0 {
		c.Vision.ImageSize = 224
	}
	if c.Text.ContextLength == 0 {
		c.Text.ContextLength = 77
	}
	if c.Text.VocabSize == 0 {
		c.Text.VocabSize = 49408
	}
	if c.Text.Heads == 0 {
		c.Text.Heads = 8
	}
	if c.Text.MLPRatio == 0 {
		c.Text.MLPRatio = 4
	}
	return c
}

// MaxLayers is the most blocks a tower of a config may have: 20× the
// deepest released CLIP tower (ViT-bigG-14's 48). A config is outside input
// (a file, a bundle's metadata), and the loader builds its tables and error
// list in proportion to the layers before any tensor is compared: a bundle
// asking for 10⁸ image-tower layers took 38 GB (FuzzFromBytes).
const MaxLayers = 1000

// MaxImageSize is the largest image side a config may ask for: 8× the
// largest released tower input (DINOv2's 518). The patch grid and the
// position table grow with its square before any weight is compared.
const MaxImageSize = 4096

// Validate reports the first inconsistency in c, naming the field.
func (c Config) Validate() error {
	type check struct {
		ok  bool
		msg string
	}
	v, t := c.Vision, c.Text
	for _, ch := range []check{
		{c.EmbedDim > 0, fmt.Sprintf("embed_dim %d must be > 0", c.EmbedDim)},
		{v.Width > 0, fmt.Sprintf("vision_cfg.width %d must be > 0", v.Width)},
		{v.Layers > 0 && v.Layers <= MaxLayers, fmt.Sprintf("vision_cfg.layers %d must be in 1..%d", v.Layers, MaxLayers)},
		{v.HeadWidth > 0 && v.Width%max(v.HeadWidth, 1) == 0, fmt.Sprintf("vision_cfg.head_width %d must divide width %d", v.HeadWidth, v.Width)},
		{v.PatchSize > 0 && v.ImageSize > 0 && v.ImageSize%max(v.PatchSize, 1) == 0, fmt.Sprintf("vision_cfg.patch_size %d must divide image_size %d", v.PatchSize, v.ImageSize)},
		{v.ImageSize <= MaxImageSize, fmt.Sprintf("vision_cfg.image_size %d: at most %d", v.ImageSize, MaxImageSize)},
		{v.Hidden() > 0, fmt.Sprintf("vision_cfg.mlp_ratio %g gives no MLP width", v.MLPRatio)},
		{t.Width > 0, fmt.Sprintf("text_cfg.width %d must be > 0", t.Width)},
		{t.Layers > 0 && t.Layers <= MaxLayers, fmt.Sprintf("text_cfg.layers %d must be in 1..%d", t.Layers, MaxLayers)},
		{t.Heads > 0 && t.Width%max(t.Heads, 1) == 0, fmt.Sprintf("text_cfg.heads %d must divide width %d", t.Heads, t.Width)},
		{t.ContextLength > 0, fmt.Sprintf("text_cfg.context_length %d must be > 0", t.ContextLength)},
		{t.VocabSize > 1, fmt.Sprintf("text_cfg.vocab_size %d must be > 1", t.VocabSize)},
		{t.Hidden() > 0, fmt.Sprintf("text_cfg.mlp_ratio %g gives no MLP width", t.MLPRatio)},
	} {
		if !ch.ok {
			return fmt.Errorf("clip: config: %s", ch.msg)
		}
	}
	return nil
}

// JSON is the canonical OpenCLIP model-config JSON of c (fixed key order,
// indented): what open_clip_config.json's model_cfg holds, and what the image
// tower's fingerprint hashes.
func (c Config) JSON() []byte {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil { // a struct of ints, floats and bools always marshals
		panic(err)
	}
	return b
}

// builtinConfigs returns OpenCLIP's model configs under their OpenCLIP names
// (open_clip/model_configs/*.json). The plain names use exact GELU as
// OpenCLIP's files do (LAION weights); OpenAI's weights were trained with
// QuickGELU: load them with the "-quickgelu" names, as OpenCLIP does.
func builtinConfigs() map[string]Config {
	vitB := func(patch int) Config {
		return Config{EmbedDim: 512,
			Vision: VisionConfig{ImageSize: 224, PatchSize: patch, Width: 768, Layers: 12, HeadWidth: 64, MLPRatio: 4},
			Text:   TextConfig{ContextLength: 77, VocabSize: 49408, Width: 512, Heads: 8, Layers: 12, MLPRatio: 4}}
	}
	m := map[string]Config{
		"ViT-B-32": vitB(32),
		"ViT-B-16": vitB(16),
		"ViT-L-14": {EmbedDim: 768,
			Vision: VisionConfig{ImageSize: 224, PatchSize: 14, Width: 1024, Layers: 24, HeadWidth: 64, MLPRatio: 4},
			Text:   TextConfig{ContextLength: 77, VocabSize: 49408, Width: 768, Heads: 12, Layers: 12, MLPRatio: 4}},
		// clip-tiny is testdata/clip-tiny/open_clip_config.json: the parity fixture's shape.
		"clip-tiny": {EmbedDim: 32, QuickGELU: true,
			Vision: VisionConfig{ImageSize: 32, PatchSize: 8, Width: 64, Layers: 2, HeadWidth: 16, MLPRatio: 4},
			Text:   TextConfig{ContextLength: 16, VocabSize: 512, Width: 64, Heads: 4, Layers: 2, MLPRatio: 4}},
	}
	for _, n := range []string{"ViT-B-32", "ViT-B-16", "ViT-L-14"} {
		c := m[n]
		c.QuickGELU = true
		m[n+"-quickgelu"] = c
	}
	return m
}

// BuiltinNames lists the built-in model names, sorted.
func BuiltinNames() []string {
	m := builtinConfigs()
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Builtin returns the built-in config called name.
func Builtin(name string) (Config, bool) {
	c, ok := builtinConfigs()[name]
	return c, ok
}

// LoadConfig resolves nameOrPath: a built-in name (see BuiltinNames), or a
// JSON file holding an OpenCLIP model config, a hub open_clip_config.json
// (with a "model_cfg" key) or an HF transformers CLIP config.json (with
// "vision_config" and "text_config").
func LoadConfig(nameOrPath string) (Config, error) {
	return weights.LoadConfig("clip", nameOrPath, Builtin, BuiltinNames, ParseConfig)
}

// ParseConfig reads a config from JSON in any of the forms LoadConfig accepts.
func ParseConfig(data []byte) (Config, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return Config{}, fmt.Errorf("clip: model config: %w", err)
	}
	if raw, ok := probe["model_cfg"]; ok {
		return ParseConfig(raw)
	}
	if _, ok := probe["vision_config"]; ok {
		return parseHFConfig(data)
	}
	return parseOpenCLIPConfig(data)
}

// openclipJSON mirrors OpenCLIP's config keys, including those naming features
// these towers lack, so that such a config is refused rather than misread.
type openclipJSON struct {
	EmbedDim  int  `json:"embed_dim"`
	QuickGELU bool `json:"quick_gelu"`
	Vision    struct {
		ImageSize       json.RawMessage `json:"image_size"`
		PatchSize       int             `json:"patch_size"`
		Width           int             `json:"width"`
		Layers          json.RawMessage `json:"layers"`
		HeadWidth       int             `json:"head_width"`
		MLPRatio        float64         `json:"mlp_ratio"`
		TimmModelName   *string         `json:"timm_model_name"`
		LSInitValue     *float64        `json:"ls_init_value"`
		NoLnPre         bool            `json:"no_ln_pre"`
		AttentionalPool bool            `json:"attentional_pool"`
		PoolType        string          `json:"pool_type"`
		GlobalAvgPool   bool            `json:"global_average_pool"`
		ProjBias        bool            `json:"proj_bias"`
	} `json:"vision_cfg"`
	Text struct {
		ContextLength int      `json:"context_length"`
		VocabSize     int      `json:"vocab_size"`
		Width         int      `json:"width"`
		Heads         int      `json:"heads"`
		Layers        int      `json:"layers"`
		MLPRatio      float64  `json:"mlp_ratio"`
		HFModelName   *string  `json:"hf_model_name"`
		LSInitValue   *float64 `json:"ls_init_value"`
		EmbedCls      bool     `json:"embed_cls"`
		PoolType      string   `json:"pool_type"`
		ProjBias      bool     `json:"proj_bias"`
		NoCausalMask  bool     `json:"no_causal_mask"`
	} `json:"text_cfg"`
}

func parseOpenCLIPConfig(data []byte) (Config, error) {
	var j openclipJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&j); err != nil {
		return Config{}, fmt.Errorf("clip: model config: %w", err)
	}
	v, t := j.Vision, j.Text
	unsupported := func(what string) (Config, error) {
		return Config{}, fmt.Errorf("%w: %s", ErrUnsupported, what)
	}
	switch {
	case v.TimmModelName != nil && *v.TimmModelName != "":
		return unsupported("timm image tower " + *v.TimmModelName)
	case t.HFModelName != nil && *t.HFModelName != "":
		return unsupported("HF text tower " + *t.HFModelName)
	case v.LSInitValue != nil || t.LSInitValue != nil:
		return unsupported("LayerScale (ls_init_value)")
	case v.NoLnPre:
		return unsupported("vision_cfg.no_ln_pre")
	case v.AttentionalPool || v.GlobalAvgPool || (v.PoolType != "" && v.PoolType != "tok"):
		return unsupported("image pooling other than the class token")
	case t.EmbedCls || (t.PoolType != "" && t.PoolType != "argmax"):
		return unsupported("text pooling other than the end-of-text token")
	case v.ProjBias || t.ProjBias:
		return unsupported("projection bias")
	case t.NoCausalMask:
		return unsupported("text_cfg.no_causal_mask")
	}
	c := Config{EmbedDim: j.EmbedDim, QuickGELU: j.QuickGELU}
	c.Vision = VisionConfig{PatchSize: v.PatchSize, Width: v.Width, HeadWidth: v.HeadWidth, MLPRatio: v.MLPRatio}
	if len(v.Layers) > 0 {
		if err := json.Unmarshal(v.Layers, &c.Vision.Layers); err != nil {
			return unsupported("vision_cfg.layers " + string(v.Layers) + " (a ResNet image tower)")
		}
	}
	if len(v.ImageSize) > 0 {
		if err := json.Unmarshal(v.ImageSize, &c.Vision.ImageSize); err != nil {
			var hw [2]int
			if err2 := json.Unmarshal(v.ImageSize, &hw); err2 != nil || hw[0] != hw[1] {
				return unsupported("vision_cfg.image_size " + string(v.ImageSize) + " (only square images)")
			}
			c.Vision.ImageSize = hw[0]
		}
	}
	c.Text = TextConfig{ContextLength: t.ContextLength, VocabSize: t.VocabSize, Width: t.Width, Heads: t.Heads, Layers: t.Layers, MLPRatio: t.MLPRatio}
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// hfJSON is the part of an HF transformers CLIPConfig these towers need.
type hfJSON struct {
	ProjectionDim int `json:"projection_dim"`
	Vision        struct {
		HiddenSize       int    `json:"hidden_size"`
		IntermediateSize int    `json:"intermediate_size"`
		Layers           int    `json:"num_hidden_layers"`
		Heads            int    `json:"num_attention_heads"`
		ImageSize        int    `json:"image_size"`
		PatchSize        int    `json:"patch_size"`
		HiddenAct        string `json:"hidden_act"`
	} `json:"vision_config"`
	Text struct {
		HiddenSize       int    `json:"hidden_size"`
		IntermediateSize int    `json:"intermediate_size"`
		Layers           int    `json:"num_hidden_layers"`
		Heads            int    `json:"num_attention_heads"`
		MaxPositions     int    `json:"max_position_embeddings"`
		VocabSize        int    `json:"vocab_size"`
		HiddenAct        string `json:"hidden_act"`
	} `json:"text_config"`
}

func parseHFConfig(data []byte) (Config, error) {
	var j hfJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return Config{}, fmt.Errorf("clip: HF config: %w", err)
	}
	v, t := j.Vision, j.Text
	// HF's defaults (CLIPVisionConfig / CLIPTextConfig) for keys a config may omit.
	def := func(x *int, d int) {
		if *x == 0 {
			*x = d
		}
	}
	def(&j.ProjectionDim, 512)
	def(&v.HiddenSize, 768)
	def(&v.IntermediateSize, 3072)
	def(&v.Layers, 12)
	def(&v.Heads, 12)
	def(&v.ImageSize, 224)
	def(&v.PatchSize, 32)
	def(&t.HiddenSize, 512)
	def(&t.IntermediateSize, 2048)
	def(&t.Layers, 12)
	def(&t.Heads, 8)
	def(&t.MaxPositions, 77)
	def(&t.VocabSize, 49408)
	if v.HiddenAct == "" {
		v.HiddenAct = "quick_gelu"
	}
	if t.HiddenAct == "" {
		t.HiddenAct = "quick_gelu"
	}
	if v.HiddenAct != t.HiddenAct {
		return Config{}, fmt.Errorf("%w: different activations in the towers (%s, %s)", ErrUnsupported, v.HiddenAct, t.HiddenAct)
	}
	var quick bool
	switch v.HiddenAct {
	case "quick_gelu":
		quick = true
	case "gelu":
	default:
		return Config{}, fmt.Errorf("%w: activation %q", ErrUnsupported, v.HiddenAct)
	}
	if v.Heads <= 0 || v.HiddenSize%v.Heads != 0 {
		return Config{}, fmt.Errorf("clip: HF config: vision num_attention_heads %d must divide hidden_size %d", v.Heads, v.HiddenSize)
	}
	c := Config{
		EmbedDim:  j.ProjectionDim,
		QuickGELU: quick,
		Vision: VisionConfig{ImageSize: v.ImageSize, PatchSize: v.PatchSize, Width: v.HiddenSize, Layers: v.Layers,
			HeadWidth: v.HiddenSize / v.Heads, MLPRatio: float64(v.IntermediateSize) / float64(v.HiddenSize)},
		Text: TextConfig{ContextLength: t.MaxPositions, VocabSize: t.VocabSize, Width: t.HiddenSize, Heads: t.Heads,
			Layers: t.Layers, MLPRatio: float64(t.IntermediateSize) / float64(t.HiddenSize)},
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// VisionBytesPerImage estimates the activation memory one image needs in a
// forward pass of the image tower with elem-byte activations: the residual
// stream and the block's intermediates (about 8 of width W and one of the MLP
// width per token) plus float32 attention scores and probabilities per head.
// The GPU backend sizes its batches with it.
func (c Config) VisionBytesPerImage(elem int) int64 {
	v := c.Vision
	T, W, H, F := int64(v.Tokens()), int64(v.Width), int64(v.Heads()), int64(v.Hidden())
	return int64(elem)*T*(8*W+F) + 2*4*H*T*T
}
