package clip

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/safetensors"

	"github.com/litcache/litcache/internal/atomicfile"
)

// ConfigFileName is the config written beside exported weights, as OpenCLIP's
// hub checkpoints name it.
const ConfigFileName = "open_clip_config.json"

// CLIP's image normalisation, written into open_clip_config.json's preprocess_cfg.
var (
	clipMean = [3]float64{0.48145466, 0.4578275, 0.40821073}
	clipStd  = [3]float64{0.26862954, 0.26130258, 0.27577711}
)

// hubConfig is open_clip_config.json as OpenCLIP's push_to_hub writes it.
type hubConfig struct {
	ModelCfg      Config `json:"model_cfg"`
	PreprocessCfg struct {
		Mean [3]float64 `json:"mean"`
		Std  [3]float64 `json:"std"`
	} `json:"preprocess_cfg"`
}

// WriteConfigFile writes cfg as an OpenCLIP hub config (model_cfg +
// preprocess_cfg), atomically; LoadConfig reads it back.
func WriteConfigFile(path string, cfg Config) error {
	var h hubConfig
	h.ModelCfg = cfg
	h.PreprocessCfg.Mean, h.PreprocessCfg.Std = clipMean, clipStd
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return fmt.Errorf("clip: config %s: %w", path, err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	return nil
}

func toSafetensors(fts []fileTensor) []safetensors.Tensor {
	out := make([]safetensors.Tensor, len(fts))
	for i, ft := range fts {
		out[i] = safetensors.F32(ft.name, ft.shape, ft.data)
	}
	return out
}

// SaveTextTower writes the text tower and logitScale to path (safetensors,
// float32, OpenCLIP names and shapes: text_projection (W,E)) and cfg as
// open_clip_config.json in the same folder. OpenCLIP loads the file into a
// model of cfg (with strict=False for the absent image tower);
// LoadTextTower reads it back exactly.
func SaveTextTower(path string, cfg Config, text *TextTower, logitScale float32) error {
	fts, err := encodeParams(text.be, text.ps, OpenCLIP)
	if err != nil {
		return err
	}
	fts = append(fts, fileTensor{"logit_scale", []int{}, []float32{logitScale}})
	meta := map[string]string{"format": "pt", "litcache": "clip text tower"}
	if err := safetensors.Write(path, toSafetensors(fts), meta); err != nil {
		return fmt.Errorf("clip: save text tower: %w", err)
	}
	return WriteConfigFile(filepath.Join(filepath.Dir(path), ConfigFileName), cfg)
}

// SaveModel writes both towers and the logit scale to path (safetensors,
// float32) under scheme's names, and the config as open_clip_config.json
// beside it.
func SaveModel(path string, m *Model, scheme Scheme) error {
	return SaveModelMeta(path, m, scheme, nil)
}

// Metadata keys of a full model litcache assembled from a locked image tower
// and a tuned text tower (tune's final/): the weights' bytes differ from the
// file the cache was made with, so the cache fingerprint the image tower
// reproduces is carried here instead.
const (
	// MetaImageFingerprint is the fingerprint of the caches the image tower made.
	MetaImageFingerprint = "litcache.image_fingerprint"
	// MetaImageWeights is where the image tower was copied from (a file or random:SEED).
	MetaImageWeights = "litcache.image_weights"
)

// SaveModelMeta is SaveModel with extra metadata entries in the file's
// header. Each tower is read from its own backend, so an image tower loaded
// on the CPU can be saved beside a text tower trained on the GPU.
func SaveModelMeta(path string, m *Model, scheme Scheme, extra map[string]string) error {
	var fts []fileTensor
	for _, t := range []struct {
		be backend.Backend
		ps paramSet
	}{{m.Vision.be, m.Vision.ps}, {m.Text.be, m.Text.ps}} {
		part, err := encodeParams(t.be, t.ps, scheme)
		if err != nil {
			return err
		}
		fts = append(fts, part...)
	}
	fts = append(fts, fileTensor{"logit_scale", []int{}, []float32{m.LogitScale}})
	meta := map[string]string{"format": "pt"}
	for k, v := range extra {
		meta[k] = v
	}
	if err := safetensors.Write(path, toSafetensors(fts), meta); err != nil {
		return fmt.Errorf("clip: save model: %w", err)
	}
	return WriteConfigFile(filepath.Join(filepath.Dir(path), ConfigFileName), m.Config)
}

// Contents says which parts of a CLIP state dict a weights file holds.
type Contents struct {
	Vision, Text, LogitScale bool
	// Metadata is the file's safetensors header metadata.
	Metadata map[string]string
}

// ReadContents opens a weights file and tells which towers it holds (by
// their tensor names, either scheme), without reading any tensor: a full
// model, or a text tower alone (tune --text-only, SaveTextTower).
func ReadContents(path string) (Contents, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return Contents{}, fmt.Errorf("clip: weights: %w", err)
	}
	defer f.Close()
	c := Contents{Metadata: f.Metadata()}
	for _, n := range f.Names() {
		switch tower(n) {
		case "vision":
			c.Vision = true
		case "text":
			c.Text = true
		case "logit_scale":
			c.LogitScale = true
		}
	}
	return c, nil
}
