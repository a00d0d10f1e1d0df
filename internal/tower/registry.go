// Package tower is the one registry of locked image towers (DESIGN.md
// decision 8): CLIP (internal/clip), DINOv2 (internal/dinov2) and Swin
// (internal/swin) behind one small surface, so that extract, embed and a
// bundle never switch on the family. A Spec (model name or config file,
// weights file or random:SEED, pooling) resolves to a Config, loads to a
// Tower that encodes preprocessed pixels into (n, Dim) embeddings, and has a
// fingerprint covering config, weights, preprocessing and pooling. A Saved
// tower (family, config JSON, pooling, fingerprint, named tensors) is what a
// bundle stores; Rebuild makes the Tower again.
//
// Like ollama's model/models registry, this package is all the rest imports;
// each family is an adapter file here over its own package.
package tower

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/weights"
)

// Family names.
const (
	CLIP   = "clip"
	DINOv2 = "dinov2"
	Swin   = "swin"
)

// ErrUnknownModel: a model is neither a built-in name nor a config file of a
// known family.
var ErrUnknownModel = errors.New("tower: unknown model")

// family is one tower family's entry in the registry.
type family struct {
	name     string
	builtins func() []string
	// builtin returns the built-in called name.
	builtin func(name string) (model, bool)
	// parse reads a config file's JSON in any form the family accepts.
	parse func(data []byte) (model, error)
	// claims reports whether a config JSON (top-level keys) is the family's.
	claims func(top map[string]json.RawMessage) bool
}

// model is a family's resolved config.
type model interface {
	json() []byte // canonical
	imageSize() int
	pools() []string // the default first
	dim(pool string) int
	preprocessor() imageproc.Preprocessor
	flops() float64
	bytesPerImage(elem int) int64
	linears(n int) []Linear
	short() string
	load(be backend.Backend, path string) (encoder, error)
	random(be backend.Backend, seed int64) (encoder, error)
	fromTensors(be backend.Backend, src weights.Source, label string) (encoder, error)
}

// encoder is a family's loaded tower.
type encoder interface {
	encode(pixels []float32, n int, pool string) []float32
	// encodeTensor is encode on pixels already on the tower's backend.
	encodeTensor(px backend.Tensor, n int, pool string) []float32
	tensors() []weights.Tensor
	free()
}

// families in the order config files are tried against.
var families = []family{clipFamily, dinov2Family, swinFamily}

func familyNamed(name string) (family, error) {
	for _, f := range families {
		if f.name == name {
			return f, nil
		}
	}
	return family{}, fmt.Errorf("%w: family %q (known: clip, dinov2, swin)", ErrUnknownModel, name)
}

// Families lists the family names.
func Families() []string {
	out := make([]string, len(families))
	for i, f := range families {
		out[i] = f.name
	}
	return out
}

// Builtins lists every family's built-in model names, sorted.
func Builtins() []string {
	var out []string
	for _, f := range families {
		out = append(out, f.builtins()...)
	}
	sort.Strings(out)
	return out
}

// Config is a resolved tower config: its family and the family's config.
type Config struct {
	family family
	m      model
}

// Family is the config's family name (clip, dinov2, swin).
func (c Config) Family() string { return c.family.name }

// JSON is the family's canonical config JSON (what the fingerprint hashes
// and a bundle stores; ParseConfig reads it back).
func (c Config) JSON() []byte { return c.m.json() }

// ImageSize is the side of the square input the tower takes.
func (c Config) ImageSize() int { return c.m.imageSize() }

// Pools lists the poolings the family offers, the default first: CLIP "cls"
// (the class token through ln_post and the projection), DINOv2 "cls",
// "mean", "cls+mean", Swin "mean" (the tokens after the final norm).
func (c Config) Pools() []string { return c.m.pools() }

// Pool resolves a pooling name: "" is the default; an unknown one is an error naming the choices.
func (c Config) Pool(pool string) (string, error) {
	ps := c.m.pools()
	if pool == "" {
		return ps[0], nil
	}
	for _, p := range ps {
		if p == pool {
			return p, nil
		}
	}
	return "", fmt.Errorf("tower: %s pools %s, not %q", c.family.name, strings.Join(ps, " or "), pool)
}

// Dim is the embedding size with pooling pool ("" for the default). The
// text tower's embed_dim must equal it: DINOv2 384/768/1024/1536 (twice that
// with cls+mean), Swin 768 or 1024, CLIP its embed_dim.
func (c Config) Dim(pool string) (int, error) {
	p, err := c.Pool(pool)
	if err != nil {
		return 0, err
	}
	return c.m.dim(p), nil
}

// Short describes the tower's shape in a few words, for tables: "ViT 224
// px /16, width 768, 12 layers", "DINOv2 224 px /14, width 768, 12 blocks,
// 4 registers", "Swin 224 px /4, width 96, depths 2-2-6-2, window 7".
func (c Config) Short() string { return c.m.short() }

// Preprocessor is the family's eval transform at ImageSize (CLIP's
// OpenCLIP transform; DINOv2's and Swin's ImageNet resize, crop and norm).
func (c Config) Preprocessor() imageproc.Preprocessor { return c.m.preprocessor() }

// FLOPs is twice the multiply-adds of one image through the tower (matrix
// products and attention), the figure GEMM ceilings are computed from.
func (c Config) FLOPs() float64 { return c.m.flops() }

// BytesPerImage estimates one image's activation memory with elem-byte
// activations (a GPU backend sizes its batches with it).
func (c Config) BytesPerImage(elem int) int64 { return c.m.bytesPerImage(elem) }

// Resolve turns a --model value into a Config: a built-in name of any
// family (Builtins), or a JSON config file. A file is one of
//   - {"family": "dinov2", "config": {...}}: a family named explicitly;
//   - an OpenCLIP model config, hub open_clip_config.json or HF CLIP
//     config.json (CLIP);
//   - DinoVisionTransformer's arguments (optionally under "model") or an HF
//     Dinov2 config.json (DINOv2);
//   - torchvision SwinTransformer's arguments, optionally under "model" (Swin).
func Resolve(model string) (Config, error) {
	for _, f := range families {
		if m, ok := f.builtin(model); ok {
			return Config{f, m}, nil
		}
	}
	data, err := os.ReadFile(model)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !strings.ContainsAny(model, `/\.`) {
			return Config{}, fmt.Errorf("%w: %q is neither a built-in (%s) nor a file", ErrUnknownModel, model, strings.Join(Builtins(), ", "))
		}
		return Config{}, fmt.Errorf("tower: model config: %w", err)
	}
	c, err := parseAny(data)
	if err != nil {
		return Config{}, fmt.Errorf("%w (in %s)", err, model)
	}
	return c, nil
}

// parseAny tells a config file's family from its keys and parses it.
func parseAny(data []byte) (Config, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return Config{}, fmt.Errorf("tower: model config: %w", err)
	}
	if raw, ok := top["family"]; ok {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return Config{}, fmt.Errorf("tower: model config: family: %w", err)
		}
		cfg, ok := top["config"]
		if !ok {
			return Config{}, fmt.Errorf("tower: model config names family %q but holds no \"config\"", name)
		}
		return ParseConfig(name, cfg)
	}
	for _, f := range families {
		if f.claims(top) {
			m, err := f.parse(data)
			if err != nil {
				return Config{}, err
			}
			return Config{f, m}, nil
		}
	}
	return Config{}, fmt.Errorf("%w: a config of no known family (CLIP, DINOv2 or Swin keys, or {\"family\", \"config\"})", ErrUnknownModel)
}

// ParseConfig reads a config of the named family from JSON (the family's
// canonical JSON, as Config.JSON and a bundle hold it, or any form the
// family accepts).
func ParseConfig(familyName string, data []byte) (Config, error) {
	f, err := familyNamed(familyName)
	if err != nil {
		return Config{}, err
	}
	m, err := f.parse(data)
	if err != nil {
		return Config{}, err
	}
	return Config{f, m}, nil
}

// has reports whether top (or its "model" object) holds any of keys.
func has(top map[string]json.RawMessage, keys ...string) bool {
	inner := map[string]json.RawMessage{}
	if raw, ok := top["model"]; ok {
		_ = json.Unmarshal(raw, &inner)
	}
	for _, k := range keys {
		if _, ok := top[k]; ok {
			return true
		}
		if _, ok := inner[k]; ok {
			return true
		}
	}
	return false
}
