package tower

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/imageproc"
)

// Fingerprint resolves spec and returns its tower's fingerprint without
// building the tower (cache fingerprint, --expect-fingerprint).
func Fingerprint(spec Spec) (string, error) {
	cfg, err := Resolve(spec.Model)
	if err != nil {
		return "", err
	}
	p, err := cfg.Pool(spec.Pool)
	if err != nil {
		return "", err
	}
	return cfg.Fingerprint(spec.Weights, p)
}

// fingerprintVersion starts every non-CLIP fingerprint's hashed text.
const fingerprintVersion = "litcache-tower/v1"

// Fingerprint identifies the embeddings this config makes with weights
// (a file, hashed whole, or "random:SEED") and pooling pool: "sha256:" + hex.
//   - CLIP: exactly extract.Fingerprint as it was before the registry —
//     sha256(clip.VisionFingerprint(config, weights), 0, imageproc.Describe),
//     so existing caches stay valid (CLIP has one pooling);
//   - others: sha256 over fingerprintVersion, the family, the canonical
//     config JSON, the weights' sha256 (or "random:SEED"), imageproc.Describe
//     and the pooling, each followed by a zero byte.
func (c Config) Fingerprint(weightsPath, pool string) (string, error) {
	if weightsPath == "" {
		return "", fmt.Errorf("tower: fingerprint: no weights (a file, or %sSEED)", RandomWeightsPrefix)
	}
	p, err := c.Pool(pool)
	if err != nil {
		return "", err
	}
	pre := imageproc.Describe(c.Preprocessor())
	if c.Family() == CLIP {
		cc := c.m.(clipModel).cfg
		vf, err := clip.VisionFingerprint(cc, weightsPath)
		if err != nil {
			return "", fmt.Errorf("tower: %w", err)
		}
		h := sha256.New()
		h.Write([]byte(vf))
		h.Write([]byte{0})
		h.Write([]byte(pre))
		return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
	}
	wid, err := weightsID(weightsPath)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, part := range []string{fingerprintVersion, c.Family(), string(c.JSON()), wid, pre, p} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// weightsID is "random:SEED" or "sha256:" + the file's sha256.
func weightsID(w string) (string, error) {
	if _, ok, err := parseRandom(w); ok {
		return w, err
	}
	f, err := os.Open(w)
	if err != nil {
		return "", fmt.Errorf("tower: fingerprint: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("tower: fingerprint: %s: %w", w, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
