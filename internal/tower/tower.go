package tower

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/weights"
)

// RandomWeightsPrefix marks pseudo weights "random:SEED": the family's
// random initialisation, deterministic in SEED (clip.RandomWeightsPrefix).
const RandomWeightsPrefix = "random:"

// Spec names a tower: what --model, --weights and --pool say.
type Spec struct {
	// Model is a built-in name or a config file (see Resolve).
	Model string
	// Weights is a safetensors file under any of the family's naming
	// schemes, or "random:SEED".
	Weights string
	// Pool is the pooling ("" = the family's default; see Config.Pools).
	Pool string
}

// parseRandom reports whether w is "random:SEED" and its seed.
func parseRandom(w string) (int64, bool, error) {
	s, ok := strings.CutPrefix(w, RandomWeightsPrefix)
	if !ok {
		return 0, false, nil
	}
	seed, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, true, fmt.Errorf("tower: weights %q: the seed is not an integer", w)
	}
	return seed, true, nil
}

// Tower is a loaded locked image tower of any family.
type Tower struct {
	cfg         Config
	pool        string
	enc         encoder
	fingerprint string
	weights     string // the weights as described (file name or random:SEED)
}

// Load resolves spec and builds its tower on be. A weights file's every
// missing, unexpected or mis-shaped tensor is named in the error.
func Load(be backend.Backend, spec Spec) (*Tower, error) {
	cfg, err := Resolve(spec.Model)
	if err != nil {
		return nil, err
	}
	return LoadConfig(be, cfg, spec.Weights, spec.Pool)
}

// LoadConfig is Load with the config already resolved.
func LoadConfig(be backend.Backend, cfg Config, weightsPath, pool string) (*Tower, error) {
	p, err := cfg.Pool(pool)
	if err != nil {
		return nil, err
	}
	fp, err := cfg.Fingerprint(weightsPath, p)
	if err != nil {
		return nil, err
	}
	return LoadWithFingerprint(be, cfg, weightsPath, p, fp)
}

// LoadWithFingerprint is LoadConfig for a tower whose fingerprint is
// already known and is to be kept (a tuned full model records the
// fingerprint of the cache its image tower made): the weights file is read
// to load the tower but not hashed, which for ViT-L/14 is a 1.7 GB read
// saved.
func LoadWithFingerprint(be backend.Backend, cfg Config, weightsPath, pool, fp string) (*Tower, error) {
	p, err := cfg.Pool(pool)
	if err != nil {
		return nil, err
	}
	if fp == "" {
		return nil, fmt.Errorf("tower: %s tower from %s: no fingerprint", cfg.Family(), describeWeights(weightsPath))
	}
	var enc encoder
	if seed, ok, _ := parseRandom(weightsPath); ok {
		enc, err = cfg.m.random(be, seed)
	} else {
		enc, err = cfg.m.load(be, weightsPath)
	}
	if err != nil {
		return nil, err
	}
	return &Tower{cfg: cfg, pool: p, enc: enc, fingerprint: fp, weights: describeWeights(weightsPath)}, nil
}

func describeWeights(w string) string {
	if strings.HasPrefix(w, RandomWeightsPrefix) {
		return w
	}
	return filepath.Base(w)
}

// Encode runs the tower on n images of pixels (n,3,S,S), S = ImageSize,
// preprocessed by Preprocessor, and returns the embeddings (n, Dim), not
// normalised. Safe for concurrent use on a backend that is.
func (t *Tower) Encode(pixels []float32, n int) []float32 { return t.enc.encode(pixels, n, t.pool) }

// EncodeTensor is Encode on n images already on the tower's backend,
// (n,3,S,S) and normalised by Preprocessor — uploaded as uint8 and
// normalised on the GPU by the cuda package's ImageUploader or ImageBatch.
// px stays the caller's.
func (t *Tower) EncodeTensor(px backend.Tensor, n int) []float32 {
	return t.enc.encodeTensor(px, n, t.pool)
}

// Dim is the embedding size.
func (t *Tower) Dim() int { return t.cfg.m.dim(t.pool) }

// ImageSize is the input side S.
func (t *Tower) ImageSize() int { return t.cfg.ImageSize() }

// Preprocessor is the eval transform that makes the tower's input.
func (t *Tower) Preprocessor() imageproc.Preprocessor { return t.cfg.Preprocessor() }

// Family is the tower's family name.
func (t *Tower) Family() string { return t.cfg.Family() }

// Pool is the pooling in use.
func (t *Tower) Pool() string { return t.pool }

// Config is the tower's resolved config.
func (t *Tower) Config() Config { return t.cfg }

// Fingerprint identifies what makes the tower's embeddings (see Config.Fingerprint).
func (t *Tower) Fingerprint() string { return t.fingerprint }

// Describe is a one-line description for a cache manifest: the compact
// config JSON, the weights, the pooling (not for CLIP, which has one) and
// the preprocessing. For CLIP it is what extract wrote before towers had a
// registry.
func (t *Tower) Describe() string { return t.cfg.describe(t.weights, t.pool) }

// Describe is Tower.Describe for the tower this config makes with weights
// (a file or "random:SEED") and pooling pool, without loading it: a cache's
// manifest is written before the tower is built (and when every shard is
// already done, the tower is never built).
func (c Config) Describe(weightsPath, pool string) (string, error) {
	p, err := c.Pool(pool)
	if err != nil {
		return "", err
	}
	return c.describe(describeWeights(weightsPath), p), nil
}

func (c Config) describe(weights, pool string) string {
	var compact bytes.Buffer
	if err := json.Compact(&compact, c.JSON()); err != nil {
		compact.Write(c.JSON())
	}
	pre := imageproc.Describe(c.Preprocessor())
	if c.Family() == CLIP {
		return fmt.Sprintf("%s weights=%s | %s", compact.String(), weights, pre)
	}
	return fmt.Sprintf("%s %s weights=%s pool=%s | %s", c.Family(), compact.String(), weights, pool, pre)
}

// Free releases the tower's weights.
func (t *Tower) Free() { t.enc.free() }

// Saved is a tower in one self-contained piece: what a bundle stores
// (tensors under the family's canonical names, the config, the pooling and
// the fingerprint of the tower it was saved from) and Rebuild reads.
type Saved struct {
	Family      string
	Config      []byte // the family's canonical config JSON
	Pool        string
	Fingerprint string
	Tensors     []weights.Tensor
}

// Save returns the tower as a Saved. The tensors are read from the backend:
// save a tower loaded on a float32 backend (the CPU) to keep them exact.
func (t *Tower) Save() Saved {
	return Saved{Family: t.Family(), Config: t.cfg.JSON(), Pool: t.pool, Fingerprint: t.fingerprint, Tensors: t.enc.tensors()}
}

// Rebuild makes a Saved tower again on be. It computes what the saved tower
// did and keeps its fingerprint, so caches made with the original stay valid.
func Rebuild(be backend.Backend, s Saved) (*Tower, error) {
	return RebuildFrom(be, s, weights.MapOf(s.Tensors))
}

// RebuildFrom is Rebuild with the tensors read from src instead of
// s.Tensors (unused): a bundle's file, read a tensor at a time, so the
// weights are never all in memory beside their copy on the backend.
func RebuildFrom(be backend.Backend, s Saved, src weights.Source) (*Tower, error) {
	cfg, err := ParseConfig(s.Family, s.Config)
	if err != nil {
		return nil, err
	}
	p, err := cfg.Pool(s.Pool)
	if err != nil {
		return nil, err
	}
	if s.Fingerprint == "" {
		return nil, fmt.Errorf("tower: saved %s tower has no fingerprint", s.Family)
	}
	enc, err := cfg.m.fromTensors(be, src, "saved "+s.Family+" tower")
	if err != nil {
		return nil, err
	}
	return &Tower{cfg: cfg, pool: p, enc: enc, fingerprint: s.Fingerprint, weights: "saved"}, nil
}
