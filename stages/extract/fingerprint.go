package extract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/store"
)

// towerSpec is the image tower cfg names, as the registry (internal/tower)
// takes it: the registry alone resolves the model, makes the fingerprint
// (config, weights, preprocessing and pooling; a CLIP one is what extract
// wrote before the registry, so existing caches stay valid) and builds the
// tower, whatever its family.
func towerSpec(cfg Config) tower.Spec {
	w := cfg.Weights
	if w == "" {
		w = tower.RandomWeightsPrefix + strconv.FormatInt(cfg.Seed, 10)
	}
	return tower.Spec{Model: cfg.ModelConfig, Weights: w, Pool: cfg.Pool}
}

// towerSource is the manifest's record of the tower: its family, config
// (the family's canonical JSON), pooling and the weights file's absolute
// path (or random:SEED), so that tune can write the tuned text tower out
// with a CLIP image tower as one full model.
func towerSource(tcfg tower.Config, spec tower.Spec) (*store.TowerSource, error) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, tcfg.JSON()); err != nil {
		compact.Write(tcfg.JSON())
	}
	w := spec.Weights
	if !strings.HasPrefix(w, tower.RandomWeightsPrefix) {
		abs, err := filepath.Abs(w)
		if err != nil {
			return nil, fmt.Errorf("extract: weights %s: %w", w, err)
		}
		w = abs
	}
	pool, err := tcfg.Pool(spec.Pool)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	return &store.TowerSource{Family: tcfg.Family(), Config: json.RawMessage(compact.Bytes()), Weights: w, Pool: pool}, nil
}
