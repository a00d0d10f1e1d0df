package clip

import (
	"encoding/json"
	"fmt"
	"path/filepath"

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
	var lts []lazyTensor
	for _, ps := range []paramSet{m.Vision.ps, m.Text.ps} {
		part, err := lazyParams(m.Vision.be, ps, scheme)
		if err != nil {
			return err
		}
		lts = append(lts, part...)
	}
	meta := map[string]string{"format": "pt"}
	ts := streamTensors(lts, fileTensor{"logit_scale", []int{}, []float32{m.LogitScale}})
	if err := safetensors.Write(path, ts, meta); err != nil {
		return fmt.Errorf("clip: save model: %w", err)
	}
	return WriteConfigFile(filepath.Join(filepath.Dir(path), ConfigFileName), m.Config)
}
