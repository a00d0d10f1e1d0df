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
