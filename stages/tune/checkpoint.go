package tune

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/litcache/litcache/internal/atomicfile"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
)

// A checkpoint is a folder OUT/checkpoints/step-NNNNNNN/ holding
//
//	open_clip_model.safetensors  text tower + logit_scale, OpenCLIP names (clip.SaveTextTower)
//	open_clip_config.json        the model config beside it (OpenCLIP loads the pair)
//	optimizer.safetensors        AdamW moments and step count
//	image_head.safetensors       the image head, when trained
//	trainer_state.json           step, epoch, partial epoch loss: the rest of the run's state
//
// It is written into a hidden temporary folder and renamed into place, so a
// step-* folder is always complete.
const (
	checkpointsDir = "checkpoints"
	modelFile      = "open_clip_model.safetensors"
	optimizerFile  = "optimizer.safetensors"
	headFile       = "image_head.safetensors"
	stateFile      = "trainer_state.json"
)

// TrainerState is trainer_state.json: what a resumed run needs beyond weights
// and moments. The data order needs no saved generator: each epoch's
// permutation and views come from a PCG seeded with (seed, epoch), so the
// position is (epoch, step within it).
type TrainerState struct {
	Step          int     `json:"step"`            // steps done
	Epoch         int     `json:"epoch"`           // epoch of the next step
	StepsPerEpoch int     `json:"steps_per_epoch"` // at the time of saving
	Seed          uint64  `json:"seed"`
	LogitScale    float32 `json:"logit_scale"`
	EpochLossSum  float64 `json:"epoch_loss_sum"` // over the steps of the current epoch so far
	EpochSteps    int     `json:"epoch_steps"`
}

// checkpointName is the folder name of the checkpoint after step steps.
func checkpointName(step int) string { return fmt.Sprintf("step-%07d", step) }

// saveCheckpoint writes a checkpoint of tr under out/checkpoints atomically
// and returns its folder.
func saveCheckpoint(out string, cfg clip.Config, tr *Trainer, st TrainerState) (string, error) {
	root := filepath.Join(out, checkpointsDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("tune: checkpoint: %w", err)
	}
	name := checkpointName(st.Step)
	final := filepath.Join(root, name)
	tmp := filepath.Join(root, ".tmp-"+name)
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("tune: checkpoint: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", fmt.Errorf("tune: checkpoint: %w", err)
	}
	if err := clip.SaveTextTower(filepath.Join(tmp, modelFile), cfg, tr.Text(), tr.LogitScale()); err != nil {
		return "", fmt.Errorf("tune: checkpoint %s: %w", name, err)
	}
	if err := tr.Optimizer().Save(filepath.Join(tmp, optimizerFile)); err != nil {
		return "", fmt.Errorf("tune: checkpoint %s: %w", name, err)
	}
	if h := tr.Head(); h != nil {
		if err := h.Save(filepath.Join(tmp, headFile)); err != nil {
			return "", fmt.Errorf("tune: checkpoint %s: %w", name, err)
		}
	}
	st.LogitScale = tr.LogitScale()
	b, _ := json.MarshalIndent(st, "", " ")
	if err := atomicfile.WriteFile(filepath.Join(tmp, stateFile), append(b, '\n')); err != nil {
		return "", fmt.Errorf("tune: checkpoint %s: %w", name, err)
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return "", fmt.Errorf("tune: checkpoint %s: %w", name, err)
	}
	// A checkpoint of the same step (a resumed run redoing it) is replaced.
	if err := os.RemoveAll(final); err != nil {
		return "", fmt.Errorf("tune: checkpoint %s: %w", name, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("tune: checkpoint %s: %w", name, err)
	}
	if err := atomicfile.SyncDir(root); err != nil {
		return "", fmt.Errorf("tune: checkpoint %s: %w", name, err)
	}
	return final, nil
}

// LatestCheckpoint returns the folder of the highest-step complete checkpoint
// under out/checkpoints, or "" when there is none.
func LatestCheckpoint(out string) (string, error) {
	root := filepath.Join(out, checkpointsDir)
	ents, err := os.ReadDir(root)
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("tune: checkpoints: %w", err)
	}
	type cp struct {
		step int
		dir  string
	}
	var cps []cp
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "step-")
		if !e.IsDir() || !ok {
			continue
		}
		s, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(dir, stateFile)); err != nil {
			continue
		}
		cps = append(cps, cp{s, dir})
	}
	if len(cps) == 0 {
		return "", nil
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i].step < cps[j].step })
	return cps[len(cps)-1].dir, nil
}

// ReadTrainerState reads a checkpoint's trainer_state.json.
func ReadTrainerState(dir string) (TrainerState, error) {
	var st TrainerState
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return st, fmt.Errorf("tune: checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("tune: checkpoint %s: %s: %w", dir, stateFile, err)
	}
	if st.Step < 0 || st.Epoch < 0 || st.EpochSteps < 0 || st.StepsPerEpoch < 1 {
		return st, fmt.Errorf("tune: checkpoint %s: %s: step %d, epoch %d, %d steps per epoch, %d epoch steps: not a run position",
			dir, stateFile, st.Step, st.Epoch, st.StepsPerEpoch, st.EpochSteps)
	}
	if l := float64(st.LogitScale); math.IsNaN(l) || l < 0 || l > math.Log(100)+1e-6 {
		return st, fmt.Errorf("tune: checkpoint %s: %s: logit scale %g outside [0, ln 100]", dir, stateFile, l)
	}
	return st, nil
}

// loadCheckpointModel loads the text tower and image head (when present) of a
// checkpoint.
func loadCheckpointModel(be backend.Backend, cfg clip.Config, dir string, wantHead bool) (*clip.TextTower, *ImageHead, error) {
	text, err := clip.LoadTextTower(be, cfg, filepath.Join(dir, modelFile))
	if err != nil {
		return nil, nil, fmt.Errorf("tune: checkpoint %s: %w", dir, err)
	}
	var head *ImageHead
	hp := filepath.Join(dir, headFile)
	_, statErr := os.Stat(hp)
	switch {
	case wantHead && statErr == nil:
		if head, err = LoadImageHead(be, hp); err != nil {
			return nil, nil, err
		}
	case wantHead:
		return nil, nil, fmt.Errorf("tune: checkpoint %s has no image head, but --image-head is set", dir)
	case statErr == nil:
		return nil, nil, fmt.Errorf("tune: checkpoint %s has an image head, but --image-head is not set", dir)
	}
	return text, head, nil
}
