package clip

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// RandomWeightsPrefix marks a pseudo weights path "random:SEED" standing for
// NewRandomModel's initialisation with SEED.
const RandomWeightsPrefix = "random:"

// RandomWeights is the pseudo weights path of a random initialisation.
func RandomWeights(seed int64) string { return RandomWeightsPrefix + strconv.FormatInt(seed, 10) }

// ParseRandomWeights reports whether weightsPath is "random:SEED" and its seed.
func ParseRandomWeights(weightsPath string) (seed int64, ok bool, err error) {
	s, found := strings.CutPrefix(weightsPath, RandomWeightsPrefix)
	if !found {
		return 0, false, nil
	}
	seed, err = strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, true, fmt.Errorf("clip: weights %q: seed is not an integer", weightsPath)
	}
	return seed, true, nil
}

// VisionFingerprint identifies an image tower for the embedding cache:
// "sha256:" + hex sha256 over the canonical config JSON (Config.JSON), a
// zero byte, and the weights file's bytes — or the text "random:SEED" when
// weightsPath is RandomWeights(SEED). Two towers with the same fingerprint
// compute the same embeddings.
func VisionFingerprint(cfg Config, weightsPath string) (string, error) {
	if weightsPath == "" {
		return "", fmt.Errorf("clip: fingerprint: no weights path (a random tower is clip.RandomWeights(seed), %q)", RandomWeights(0))
	}
	h := sha256.New()
	h.Write(cfg.JSON())
	h.Write([]byte{0})
	if _, ok, err := ParseRandomWeights(weightsPath); ok {
		if err != nil {
			return "", err
		}
		h.Write([]byte(weightsPath))
	} else {
		f, err := os.Open(weightsPath)
		if err != nil {
			return "", fmt.Errorf("clip: fingerprint: %w", err)
		}
		defer f.Close()
		if _, err := io.Copy(h, f); err != nil {
			return "", fmt.Errorf("clip: fingerprint: %s: %w", weightsPath, err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
