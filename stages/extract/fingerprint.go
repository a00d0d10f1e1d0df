package extract

import (
	"strconv"

	"github.com/litcache/litcache/internal/tower"
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
