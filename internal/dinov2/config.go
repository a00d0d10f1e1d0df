// Package dinov2 is Meta's DINOv2 image tower (facebookresearch/dinov2,
// DinoVisionTransformer at commit 9c7e324) written against internal/backend,
// for use as a locked tower: ViT-S/14, B/14, L/14 and g/14, with and without
// register tokens; LayerScale; the SwiGLU FFN of ViT-g (w12 then w3, hidden
// size by SwiGLUFFNFused's rule); the position table resized bit for bit as
// the reference does; weights under Meta's names (torch.hub, timm's
// vit_*_dinov2) or HF transformers' Dinov2Model names; DINOv2's eval
// preprocessing; pooling of the class token, the mean patch token, or both
// concatenated (the linear-probe recipe).
//
// Letters in shape comments: B batch, T tokens (1 + R registers + P
// patches), P = g² patches of a g×g grid, C width, H heads, F FFN width,
// S image side, M trained grid side.
package dinov2

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/weights"
)

// LayerNormEps is the epsilon of every DINOv2 layer norm (norm_layer =
// partial(nn.LayerNorm, eps=1e-6)).
const LayerNormEps = 1e-6

// ErrUnsupported is returned (wrapped) for a config asking for what this
// tower does not implement.
var ErrUnsupported = errors.New("dinov2: unsupported model")

func errorf(format string, args ...any) error {
	return fmt.Errorf("dinov2: "+format, args...)
}

// FFN kinds (DinoVisionTransformer's ffn_layer).
const (
	FFNMLP    = "mlp"         // fc1, GELU, fc2
	FFNSwiGLU = "swiglufused" // w12, silu(x1)·x2, w3 ("swiglu" is the same)
)

// Config is DinoVisionTransformer's constructor arguments (the JSON keys are
// Meta's), plus the input size and resize this tower runs at.
type Config struct {
	// ImgSize is the training image size: the position table holds
	// (ImgSize/PatchSize)² + 1 rows (518 for the released weights).
	ImgSize   int     `json:"img_size"`
	PatchSize int     `json:"patch_size"`
	EmbedDim  int     `json:"embed_dim"`
	Depth     int     `json:"depth"`
	NumHeads  int     `json:"num_heads"`
	MLPRatio  float64 `json:"mlp_ratio"`
	QKVBias   bool    `json:"qkv_bias"`
	ProjBias  bool    `json:"proj_bias"`
	FFNBias   bool    `json:"ffn_bias"`
	// InitValues > 0 turns LayerScale on (ls1, ls2 gammas); 0 is Meta's None.
	InitValues float64 `json:"init_values"`
	// FFNLayer is FFNMLP or FFNSwiGLU.
	FFNLayer             string  `json:"ffn_layer"`
	NumRegisterTokens    int     `json:"num_register_tokens"`
	InterpolateOffset    float64 `json:"interpolate_offset"`
	InterpolateAntialias bool    `json:"interpolate_antialias"`
	// ImageSize is the input side run here (the eval crop, 224 by default);
	// the position table is resized to its grid.
	ImageSize int `json:"image_size"`
	// ResizeSize is the eval transform's shortest side before the centre
	// crop (256 for 224, DINOv2's make_classification_eval_transform).
	ResizeSize int `json:"resize_size"`
}

// defaults are DinoVisionTransformer's defaults for keys a config omits.
func defaults() Config {
	return Config{ImgSize: 224, PatchSize: 16, EmbedDim: 768, Depth: 12, NumHeads: 12, MLPRatio: 4,
		QKVBias: true, ProjBias: true, FFNBias: true, FFNLayer: FFNMLP, InterpolateOffset: 0.1}
}

// hub is the torch.hub backbone of an architecture (dinov2/hub/backbones.py):
// trained at 518 px, patch 14, LayerScale 1.0; registers bring
// interpolate_antialias and interpolate_offset 0.
func hub(dim, depth, heads int, ffn string, registers bool) Config {
	c := defaults()
	c.ImgSize, c.PatchSize, c.EmbedDim, c.Depth, c.NumHeads, c.InitValues, c.FFNLayer = 518, 14, dim, depth, heads, 1, ffn
	if registers {
		c.NumRegisterTokens, c.InterpolateAntialias, c.InterpolateOffset = 4, true, 0
	}
	c.ImageSize, c.ResizeSize = 224, 256
	return c
}

func builtinConfigs() map[string]Config {
	m := map[string]Config{}
	for _, a := range []struct {
		name              string
		dim, depth, heads int
		ffn               string
	}{
		{"vits14", 384, 12, 6, FFNMLP},
		{"vitb14", 768, 12, 12, FFNMLP},
		{"vitl14", 1024, 24, 16, FFNMLP},
		{"vitg14", 1536, 40, 24, FFNSwiGLU},
	} {
		m["dinov2-"+a.name] = hub(a.dim, a.depth, a.heads, a.ffn, false)
		m["dinov2-"+a.name+"-reg"] = hub(a.dim, a.depth, a.heads, a.ffn, true)
	}
	m[TinyName] = tiny()
	return m
}

// TinyName is the built-in small tower for demos and tests (random weights).
const TinyName = "dinov2-tiny"

// tiny is the dinov2-tiny fixture's shape (testdata/dinov2-tiny: patch 14,
// width 64, 2 blocks of 4 heads, 4 registers) with hub's LayerScale 1.0, run
// at its trained 56 px after a resize to 64: DINOv2's own 224/256 crop ratio
// on the demo's 64 px images, so that a random tower reads them as the
// released ones read photos.
func tiny() Config {
	c := defaults()
	c.ImgSize, c.PatchSize, c.EmbedDim, c.Depth, c.NumHeads, c.InitValues, c.NumRegisterTokens = 56, 14, 64, 2, 4, 1, 4
	c.ImageSize, c.ResizeSize = 56, 64
	return c
}

// BuiltinNames lists the built-in model names (dinov2-vits14 …
// dinov2-vitg14-reg, torch.hub's dinov2_vit*14[_reg], and TinyName), sorted.
func BuiltinNames() []string {
	var names []string
	for n := range builtinConfigs() {
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

// Grid is the number of patches per side at the trained size (M).
func (c Config) Grid() int { return c.ImgSize / c.PatchSize }

// RunGrid is the number of patches per side at ImageSize (g).
func (c Config) RunGrid() int { return c.ImageSize / c.PatchSize }

// Tokens is the sequence length at ImageSize: class token, registers, patches.
func (c Config) Tokens() int { return 1 + c.NumRegisterTokens + c.RunGrid()*c.RunGrid() }

// HeadDim is the width of one attention head.
func (c Config) HeadDim() int { return c.EmbedDim / c.NumHeads }

// Hidden is the FFN's inner width: int(dim·mlp_ratio) for the MLP; for
// SwiGLU, SwiGLUFFNFused's (int(h·2/3) + 7) // 8 · 8 of that (4096 for ViT-g).
func (c Config) Hidden() int {
	h := int(float64(c.EmbedDim) * c.MLPRatio)
	if c.FFNLayer == FFNSwiGLU {
		h = (int(float64(h)*2/3) + 7) / 8 * 8
	}
	return h
}

// LayerScale reports whether the blocks scale their branches (ls1, ls2).
func (c Config) LayerScale() bool { return c.InitValues > 0 }

// MaxDepth is the most blocks a config may have: 25× ViT-g/14's 40. A
// config is outside input (a file, a bundle's metadata), and the tensor
// table and its error list grow with the depth before any tensor is compared.
const MaxDepth = 1000

// MaxImageSize is the largest img_size, image_size or resize_size a config
// may ask for (8× the largest released input, 518): the position table is
// resized to the run's patch grid, which grows with the square of the side.
const MaxImageSize = 4096

// Validate reports the first inconsistency in c, naming the field.
func (c Config) Validate() error {
	for _, ch := range []struct {
		ok  bool
		msg string
	}{
		{c.PatchSize > 0, fmt.Sprintf("patch_size %d must be > 0", c.PatchSize)},
		{c.ImgSize > 0 && c.ImgSize%max(c.PatchSize, 1) == 0, fmt.Sprintf("patch_size %d must divide img_size %d", c.PatchSize, c.ImgSize)},
		{c.ImageSize > 0 && c.ImageSize%max(c.PatchSize, 1) == 0, fmt.Sprintf("patch_size %d must divide image_size %d", c.PatchSize, c.ImageSize)},
		{c.ResizeSize >= c.ImageSize, fmt.Sprintf("resize_size %d must be ≥ image_size %d", c.ResizeSize, c.ImageSize)},
		{max(c.ImgSize, c.ImageSize, c.ResizeSize) <= MaxImageSize, fmt.Sprintf("img_size %d, image_size %d, resize_size %d: at most %d", c.ImgSize, c.ImageSize, c.ResizeSize, MaxImageSize)},
		{c.EmbedDim > 0, fmt.Sprintf("embed_dim %d must be > 0", c.EmbedDim)},
		{c.Depth > 0 && c.Depth <= MaxDepth, fmt.Sprintf("depth %d must be in 1..%d", c.Depth, MaxDepth)},
		{c.NumHeads > 0 && c.EmbedDim%max(c.NumHeads, 1) == 0, fmt.Sprintf("num_heads %d must divide embed_dim %d", c.NumHeads, c.EmbedDim)},
		{c.Hidden() > 0, fmt.Sprintf("mlp_ratio %g gives no FFN width", c.MLPRatio)},
		{c.FFNLayer == FFNMLP || c.FFNLayer == FFNSwiGLU, fmt.Sprintf("ffn_layer %q is not mlp or swiglufused", c.FFNLayer)},
		{c.NumRegisterTokens >= 0, fmt.Sprintf("num_register_tokens %d must be ≥ 0", c.NumRegisterTokens)},
		{c.InterpolateOffset >= 0 && !math.IsInf(c.InterpolateOffset, 0), fmt.Sprintf("interpolate_offset %g must be ≥ 0", c.InterpolateOffset)},
	} {
		if !ch.ok {
			return errorf("config: %s", ch.msg)
		}
	}
	return nil
}

// JSON is the canonical config JSON (every key, fixed order): what the
// fingerprint hashes and a bundle stores.
func (c Config) JSON() []byte {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil { // ints, floats, bools and a string always marshal
		panic(err)
	}
	return b
}

// Preprocessor is DINOv2's eval transform at this config's size: Resize
// (ResizeSize, bicubic), CenterCrop(ImageSize), ImageNet mean and std.
func (c Config) Preprocessor() imageproc.Preprocessor {
	return imageproc.ImageNetPreprocessor(c.ResizeSize, c.ImageSize)
}

// FLOPs is twice the multiply-adds of one image at ImageSize (matrix
// products and attention; norms and activations left out).
func (c Config) FLOPs() float64 {
	g, P, C, F, T := float64(c.RunGrid()), float64(c.PatchSize), float64(c.EmbedDim), float64(c.Hidden()), float64(c.Tokens())
	f := 2 * g * g * 3 * P * P * C
	ffn := 2 * 2 * T * C * F
	if c.FFNLayer == FFNSwiGLU {
		ffn = 2*T*C*2*F + 2*T*F*C
	}
	block := 2*T*C*3*C + 2*2*T*T*C + 2*T*C*C + ffn
	return f + float64(c.Depth)*block
}

// BytesPerImage estimates one image's activation memory in a forward pass
// with elem-byte activations: the residual stream and a block's
// intermediates plus float32 attention scores and probabilities per head.
func (c Config) BytesPerImage(elem int) int64 {
	T, C, F, H := int64(c.Tokens()), int64(c.EmbedDim), int64(c.Hidden()), int64(c.NumHeads)
	return int64(elem)*T*(8*C+2*F) + 2*4*H*T*T
}

// LoadConfig resolves nameOrPath: a built-in name or a JSON file (see ParseConfig).
func LoadConfig(nameOrPath string) (Config, error) {
	return weights.LoadConfig("dinov2", nameOrPath, Builtin, BuiltinNames, ParseConfig)
}

// ParseConfig reads a config from JSON: DinoVisionTransformer's constructor
// arguments (Meta's keys, as this package writes them), optionally under a
// "model" key (the fixtures' generator_config.json), or an HF transformers
// config.json of model_type dinov2 / dinov2_with_registers, which is read as
// the torch.hub model of the same shape. Unknown keys are an error, so that
// a feature this tower lacks is refused rather than ignored.
func ParseConfig(data []byte) (Config, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return Config{}, errorf("model config: %w", err)
	}
	if raw, ok := probe["model"]; ok {
		return ParseConfig(raw)
	}
	if _, ok := probe["model_type"]; ok {
		return parseHF(data)
	}
	c := defaults()
	if raw, ok := probe["init_values"]; ok && string(raw) == "null" {
		delete(probe, "init_values") // Meta's None: no LayerScale
	}
	if raw, ok := probe["in_chans"]; ok && string(raw) != "3" {
		return Config{}, fmt.Errorf("%w: in_chans %s (only RGB)", ErrUnsupported, raw)
	}
	// Constructor arguments that change nothing at inference (block_chunks
	// only renames the blocks, which Load handles).
	for _, k := range []string{"in_chans", "drop_path_rate", "drop_path_uniform", "block_chunks"} {
		delete(probe, k)
	}
	clean, _ := json.Marshal(probe)
	dec := json.NewDecoder(bytes.NewReader(clean))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, errorf("model config: %w", err)
	}
	if c.FFNLayer == "swiglu" {
		c.FFNLayer = FFNSwiGLU
	}
	if c.FFNLayer == "identity" {
		return Config{}, fmt.Errorf("%w: ffn_layer identity", ErrUnsupported)
	}
	if _, ok := probe["image_size"]; !ok {
		c.ImageSize = c.ImgSize
	}
	if _, ok := probe["resize_size"]; !ok {
		c.ResizeSize = c.ImageSize * 256 / 224
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// hfJSON is the part of an HF Dinov2Config / Dinov2WithRegistersConfig this tower reads.
type hfJSON struct {
	ModelType        string   `json:"model_type"`
	HiddenSize       int      `json:"hidden_size"`
	Layers           int      `json:"num_hidden_layers"`
	Heads            int      `json:"num_attention_heads"`
	MLPRatio         float64  `json:"mlp_ratio"`
	HiddenAct        string   `json:"hidden_act"`
	ImageSize        int      `json:"image_size"`
	PatchSize        int      `json:"patch_size"`
	NumChannels      int      `json:"num_channels"`
	QKVBias          *bool    `json:"qkv_bias"`
	LayerScaleValue  *float64 `json:"layerscale_value"`
	LayerNormEps     float64  `json:"layer_norm_eps"`
	UseSwiGLU        bool     `json:"use_swiglu_ffn"`
	NumRegisterToken int      `json:"num_register_tokens"`
}

func parseHF(data []byte) (Config, error) {
	var j hfJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return Config{}, errorf("HF config: %w", err)
	}
	switch j.ModelType {
	case "dinov2", "dinov2_with_registers":
	default:
		return Config{}, fmt.Errorf("%w: HF model_type %q", ErrUnsupported, j.ModelType)
	}
	if j.HiddenAct != "" && j.HiddenAct != "gelu" {
		return Config{}, fmt.Errorf("%w: hidden_act %q", ErrUnsupported, j.HiddenAct)
	}
	if j.NumChannels != 0 && j.NumChannels != 3 {
		return Config{}, fmt.Errorf("%w: num_channels %d", ErrUnsupported, j.NumChannels)
	}
	if j.LayerNormEps != 0 && math.Abs(j.LayerNormEps-LayerNormEps) > 1e-12 {
		return Config{}, fmt.Errorf("%w: layer_norm_eps %g (DINOv2 uses 1e-6)", ErrUnsupported, j.LayerNormEps)
	}
	ffn := FFNMLP
	if j.UseSwiGLU {
		ffn = FFNSwiGLU
	}
	c := hub(j.HiddenSize, j.Layers, j.Heads, ffn, j.ModelType == "dinov2_with_registers")
	if j.ModelType == "dinov2_with_registers" {
		c.NumRegisterTokens = j.NumRegisterToken
	}
	if j.MLPRatio > 0 {
		c.MLPRatio = j.MLPRatio
	}
	if j.ImageSize > 0 {
		c.ImgSize = j.ImageSize
	}
	if j.PatchSize > 0 {
		c.PatchSize = j.PatchSize
	}
	if j.QKVBias != nil {
		c.QKVBias = *j.QKVBias
	}
	if j.LayerScaleValue != nil {
		c.InitValues = *j.LayerScaleValue
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
