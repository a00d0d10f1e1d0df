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

// streamTensors turns lazy tensors (and any eager ones) into safetensors
// tensors that convert each lazy one only when the writer reaches it.
func streamTensors(lts []lazyTensor, eager ...fileTensor) []safetensors.Tensor {
	out := make([]safetensors.Tensor, 0, len(lts)+len(eager))
	for _, lt := range lts {
		out = append(out, safetensors.F32Lazy(lt.name, lt.shape, lt.values))
	}
	for _, ft := range eager {
		out = append(out, safetensors.F32(ft.name, ft.shape, ft.data))
	}
	return out
}

// SaveTextTower writes the text tower and logitScale to path (safetensors,
// float32, OpenCLIP names and shapes: text_projection (W,E)) and cfg as
// open_clip_config.json in the same folder. OpenCLIP loads the file into a
// model of cfg (with strict=False for the absent image tower);
// LoadTextTower reads it back exactly. Tensors are copied out one at a
// time, so a save (every checkpoint) needs one tensor's memory, not the tower's.
func SaveTextTower(path string, cfg Config, text *TextTower, logitScale float32) error {
	lts, err := lazyParams(text.be, text.ps, OpenCLIP)
	if err != nil {
		return err
	}
	meta := map[string]string{"format": "pt", "litcache": "clip text tower"}
	ts := streamTensors(lts, fileTensor{"logit_scale", []int{}, []float32{logitScale}})
	if err := safetensors.Write(path, ts, meta); err != nil {
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
// on the CPU can be saved beside a text tower trained on the GPU. Tensors
// are copied out one at a time, as SaveTextTower does.
func SaveModelMeta(path string, m *Model, scheme Scheme, extra map[string]string) error {
	var lts []lazyTensor
	for _, t := range []struct {
		be backend.Backend
		ps paramSet
	}{{m.Vision.be, m.Vision.ps}, {m.Text.be, m.Text.ps}} {
		part, err := lazyParams(t.be, t.ps, scheme)
		if err != nil {
			return err
		}
		lts = append(lts, part...)
	}
	meta := map[string]string{"format": "pt"}
	for k, v := range extra {
		meta[k] = v
	}
	ts := streamTensors(lts, fileTensor{"logit_scale", []int{}, []float32{m.LogitScale}})
	if err := safetensors.Write(path, ts, meta); err != nil {
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
