package extract

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/store"
)

// Fingerprint identifies what makes a cache's embeddings: the image tower
// (clip.VisionFingerprint: config + weights bytes, or the random seed) and
// the preprocessing (imageproc.Describe). Readers compare it.
func Fingerprint(cfg clip.Config, weights string, seed int64) (string, error) {
	if weights == "" {
		weights = clip.RandomWeights(seed)
	}
	tower, err := clip.VisionFingerprint(cfg, weights)
	if err != nil {
		return "", fmt.Errorf("extract: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(tower))
	h.Write([]byte{0})
	h.Write([]byte(imageproc.Describe(imageproc.CLIPPreprocessor(cfg.Vision.ImageSize))))
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// FingerprintFor is Fingerprint from a model config name or path.
func FingerprintFor(modelConfig, weights string, seed int64) (string, error) {
	cfg, err := clip.LoadConfig(modelConfig)
	if err != nil {
		return "", fmt.Errorf("extract: %w", err)
	}
	return Fingerprint(cfg, weights, seed)
}

// modelDescription is the manifest's human-readable model line: the config
// on one line, the weights file's name (or the random seed) and the
// preprocessing.
func modelDescription(cfg Config, mcfg clip.Config, pre imageproc.Preprocessor) string {
	var compact bytes.Buffer
	if err := json.Compact(&compact, mcfg.JSON()); err != nil {
		compact.Write(mcfg.JSON())
	}
	return fmt.Sprintf("%s weights=%s | %s", compact.String(), weightsName(cfg), imageproc.Describe(pre))
}

func weightsName(cfg Config) string {
	if cfg.Weights == "" {
		return clip.RandomWeights(cfg.Seed)
	}
	return filepath.Base(cfg.Weights)
}

// towerSource is the manifest's record of the tower: the config and the
// weights file's absolute path (or random:SEED), so that tune can write the
// tuned text tower out with this image tower as one full model.
func towerSource(cfg Config, mcfg clip.Config) (*store.TowerSource, error) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, mcfg.JSON()); err != nil {
		compact.Write(mcfg.JSON())
	}
	w := weightsName(cfg)
	if _, random, _ := clip.ParseRandomWeights(cfg.Weights); cfg.Weights != "" && !random {
		abs, err := filepath.Abs(cfg.Weights)
		if err != nil {
			return nil, fmt.Errorf("extract: weights %s: %w", cfg.Weights, err)
		}
		w = abs
	}
	return &store.TowerSource{Config: json.RawMessage(compact.Bytes()), Weights: w}, nil
}
