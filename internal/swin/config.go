// Package swin is the Swin Transformer (v1) image tower as torchvision
// implements it (torchvision.models.SwinTransformer, 0.14), written against
// internal/backend for use as a locked tower: window attention with the
// relative position bias table, shifted windows with their attention mask
// (no shift where the window covers the map), patch merging; the embedding
// is the average of the tokens after the final norm (what the classifier
// head reads). Weights under torchvision's names, or timm's through a
// mapping table.
//
// Letters in shape comments: B batch, H×W a stage's token map, C its width,
// ws the window side, N = ws² tokens per window, nW windows per image,
// h heads.
package swin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/weights"
)

// LayerNormEps is the epsilon of every layer norm (partial(nn.LayerNorm, eps=1e-5)).
const LayerNormEps = 1e-5

// MaskValue is what the shifted-window mask adds to the scores of token
// pairs from different regions (torchvision's masked_fill value).
const MaskValue = -100

// ErrUnsupported is returned (wrapped) for a config asking for what this
// tower does not implement.
var ErrUnsupported = errors.New("swin: unsupported model")

func errorf(format string, args ...any) error { return fmt.Errorf("swin: "+format, args...) }

// Config is torchvision's SwinTransformer arguments (square patches and
// windows), plus the input size and resize this tower runs at.
type Config struct {
	PatchSize  int     `json:"patch_size"`
	EmbedDim   int     `json:"embed_dim"`
	Depths     []int   `json:"depths"`
	NumHeads   []int   `json:"num_heads"`
	WindowSize int     `json:"window_size"`
	MLPRatio   float64 `json:"mlp_ratio"`
	// NumClasses is the classifier head's size; the tower does not use the head.
	NumClasses int `json:"num_classes"`
	// ImageSize is the input side (224); ResizeSize the eval transform's
	// shortest side before the centre crop (232 for Swin-T's weights).
	ImageSize  int `json:"image_size"`
	ResizeSize int `json:"resize_size"`
}

func builtinConfigs() map[string]Config {
	mk := func(dim int, depths, heads []int, resize int) Config {
		return Config{PatchSize: 4, EmbedDim: dim, Depths: depths, NumHeads: heads, WindowSize: 7, MLPRatio: 4,
			NumClasses: 1000, ImageSize: 224, ResizeSize: resize}
	}
	// torchvision's swin_t/s/b and their IMAGENET1K_V1 transforms.
	return map[string]Config{
		"swin-t": mk(96, []int{2, 2, 6, 2}, []int{3, 6, 12, 24}, 232),
		"swin-s": mk(96, []int{2, 2, 18, 2}, []int{3, 6, 12, 24}, 246),
		"swin-b": mk(128, []int{2, 2, 18, 2}, []int{4, 8, 16, 32}, 238),
		// The swin-tiny fixture's shape (testdata/swin-tiny: width 32,
		// stages of 2 and 2 blocks, window 4) at the demo's 64 px images,
		// resized as Swin-T's weights are (232/224): a 16×16 then an 8×8
		// map, both with shifted windows. For demos and tests (random weights).
		TinyName: {PatchSize: 4, EmbedDim: 32, Depths: []int{2, 2}, NumHeads: []int{2, 4}, WindowSize: 4, MLPRatio: 4,
			NumClasses: 10, ImageSize: 64, ResizeSize: 66},
	}
}

// TinyName is the built-in small tower for demos and tests.
const TinyName = "swin-tiny"

// BuiltinNames lists the built-in model names (swin-t, swin-s, swin-b, TinyName), sorted.
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

// StageDim is stage i's width, embed_dim·2^i.
func (c Config) StageDim(i int) int { return c.EmbedDim << i }

// Dim is the embedding size: the last stage's width (768 for Swin-T and -S, 1024 for -B).
func (c Config) Dim() int { return c.StageDim(len(c.Depths) - 1) }

// StageSide is stage i's token map side at ImageSize: S/P, halved (rounded
// up, as the merging pads odd maps) after each stage.
func (c Config) StageSide(i int) int {
	s := c.ImageSize / c.PatchSize
	for ; i > 0; i-- {
		s = (s + 1) / 2
	}
	return s
}

// Hidden is stage i's MLP width, int(dim·mlp_ratio).
func (c Config) Hidden(i int) int { return int(float64(c.StageDim(i)) * c.MLPRatio) }

// Limits on a config, which is outside input (a file, a bundle's
// metadata): the tensor table and its error list grow with the blocks
// before any tensor is compared, and each stage doubles the width.
// torchvision's Swins have 4 stages and at most 24 blocks.
const (
	MaxStages = 8
	MaxBlocks = 1000
	// MaxImageSize is the largest image_size or resize_size (8× the
	// largest released tower input): the token map grows with its square.
	MaxImageSize = 4096
)

// Validate reports the first inconsistency in c, naming the field.
func (c Config) Validate() error {
	for _, ch := range []struct {
		ok  bool
		msg string
	}{
		{c.PatchSize > 0 && c.ImageSize > 0 && c.ImageSize%max(c.PatchSize, 1) == 0, fmt.Sprintf("patch_size %d must divide image_size %d", c.PatchSize, c.ImageSize)},
		{c.ResizeSize >= c.ImageSize, fmt.Sprintf("resize_size %d must be ≥ image_size %d", c.ResizeSize, c.ImageSize)},
		{max(c.ImageSize, c.ResizeSize) <= MaxImageSize, fmt.Sprintf("image_size %d, resize_size %d: at most %d", c.ImageSize, c.ResizeSize, MaxImageSize)},
		{c.EmbedDim > 0, fmt.Sprintf("embed_dim %d must be > 0", c.EmbedDim)},
		{len(c.Depths) > 0 && len(c.Depths) == len(c.NumHeads), fmt.Sprintf("depths %v and num_heads %v must have one entry per stage", c.Depths, c.NumHeads)},
		{len(c.Depths) <= MaxStages, fmt.Sprintf("%d stages: at most %d (each halves the map and doubles the width)", len(c.Depths), MaxStages)},
		{c.WindowSize > 0, fmt.Sprintf("window_size %d must be > 0", c.WindowSize)},
		{c.MLPRatio > 0, fmt.Sprintf("mlp_ratio %g must be > 0", c.MLPRatio)},
	} {
		if !ch.ok {
			return errorf("config: %s", ch.msg)
		}
	}
	blocks := 0
	for i, d := range c.Depths {
		h := c.NumHeads[i]
		if d <= 0 || d > MaxBlocks || h <= 0 || c.StageDim(i)%h != 0 {
			return errorf("config: stage %d: depth %d, %d heads for width %d", i, d, h, c.StageDim(i))
		}
		blocks += d
	}
	if blocks > MaxBlocks {
		return errorf("config: depths %v: %d blocks, at most %d", c.Depths, blocks, MaxBlocks)
	}
	return nil
}

// JSON is the canonical config JSON (every key, fixed order).
func (c Config) JSON() []byte {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// Preprocessor is the eval transform of torchvision's Swin weights:
// Resize(ResizeSize, bicubic), CenterCrop(ImageSize), ImageNet mean and std.
func (c Config) Preprocessor() imageproc.Preprocessor {
	return imageproc.ImageNetPreprocessor(c.ResizeSize, c.ImageSize)
}

// window is the window side at a map of side s and whether its blocks
// shift: torchvision keeps the window and pads the map to a multiple of it,
// and does not shift where one window covers the (padded) map.
func (c Config) window(s int) (ws int, shifts bool) {
	ws = c.WindowSize
	padded := (s + ws - 1) / ws * ws
	return ws, ws < padded
}

// FLOPs is twice the multiply-adds of one image at ImageSize (matrix
// products and window attention; norms and activations left out).
func (c Config) FLOPs() float64 {
	s := float64(c.ImageSize / c.PatchSize)
	P := float64(c.PatchSize)
	f := 2 * s * s * 3 * P * P * float64(c.EmbedDim)
	for i, d := range c.Depths {
		side := c.StageSide(i)
		ws, _ := c.window(side)
		padded := float64((side + ws - 1) / ws * ws)
		C, F, N := float64(c.StageDim(i)), float64(c.Hidden(i)), float64(ws*ws)
		tokens, wtokens := float64(side*side), padded*padded
		block := 2*wtokens*C*3*C + 2*2*wtokens*N*C + 2*wtokens*C*C + 2*2*tokens*C*F
		f += float64(d) * block
		if i < len(c.Depths)-1 {
			out := float64(c.StageSide(i + 1))
			f += 2 * out * out * 4 * C * 2 * C
		}
	}
	return f
}

// BytesPerImage estimates one image's activation memory in a forward pass
// with elem-byte activations: the first stage's tokens (the largest)
// through a block's intermediates, plus float32 window scores.
func (c Config) BytesPerImage(elem int) int64 {
	side := int64(c.StageSide(0))
	ws := int64(c.WindowSize)
	T, C, F, H := side*side, int64(c.StageDim(0)), int64(c.Hidden(0)), int64(c.NumHeads[0])
	return int64(elem)*T*(10*C+F) + 2*4*H*T*ws*ws
}

// LoadConfig resolves nameOrPath: a built-in name or a JSON file (see ParseConfig).
func LoadConfig(nameOrPath string) (Config, error) {
	return weights.LoadConfig("swin", nameOrPath, Builtin, BuiltinNames, ParseConfig)
}

// ParseConfig reads torchvision's SwinTransformer arguments as JSON
// (patch_size and window_size an int or a square [a, a]), optionally under a
// "model" key with "image_size" beside it (the fixtures'
// generator_config.json). Dropout rates are accepted and ignored (the tower
// is run for inference); unknown keys are an error.
func ParseConfig(data []byte) (Config, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return Config{}, errorf("model config: %w", err)
	}
	if raw, ok := probe["model"]; ok {
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(raw, &inner); err != nil {
			return Config{}, errorf("model config: %w", err)
		}
		for _, k := range []string{"image_size", "resize_size"} {
			if v, ok := probe[k]; ok {
				if _, set := inner[k]; !set {
					inner[k] = v
				}
			}
		}
		probe = inner
	}
	for _, k := range []string{"patch_size", "window_size"} {
		if raw, ok := probe[k]; ok {
			v, err := squareInt(raw)
			if err != nil {
				return Config{}, fmt.Errorf("%w: %s %s (%v)", ErrUnsupported, k, raw, err)
			}
			probe[k] = json.RawMessage(fmt.Sprint(v))
		}
	}
	for _, k := range []string{"dropout", "attention_dropout", "stochastic_depth_prob"} {
		delete(probe, k)
	}
	c := Config{PatchSize: 4, MLPRatio: 4, NumClasses: 1000, ImageSize: 224}
	clean, _ := json.Marshal(probe)
	dec := json.NewDecoder(bytes.NewReader(clean))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, errorf("model config: %w", err)
	}
	if _, ok := probe["resize_size"]; !ok {
		// Swin-T's ratio (232 for 224), torchvision's choice for its smallest model.
		c.ResizeSize = c.ImageSize * 232 / 224
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// squareInt reads an int or a list of two equal ints.
func squareInt(raw json.RawMessage) (int, error) {
	var v int
	if err := json.Unmarshal(raw, &v); err == nil {
		return v, nil
	}
	var hw []int
	if err := json.Unmarshal(raw, &hw); err != nil || len(hw) != 2 || hw[0] != hw[1] {
		return 0, errors.New("only square sizes")
	}
	return hw[0], nil
}
