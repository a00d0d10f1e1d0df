package tune

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/litcache/litcache/internal/atomicfile"
)

// StepLine is a per-step line of metrics.jsonl.
type StepLine struct {
	Kind        string  `json:"kind"`  // "step"
	Step        int     `json:"step"`  // 0-based
	Epoch       int     `json:"epoch"` // 0-based epoch the step runs in
	Loss        float64 `json:"loss"`
	LR          float64 `json:"lr"`
	LogitScale  float64 `json:"logit_scale"`
	GradNorm    float64 `json:"grad_norm"`
	Unique      int     `json:"unique_captions"`
	Encoded     int     `json:"encoded_rows"`
	Context     int     `json:"context"`
	SamplesPerS float64 `json:"samples_per_s"`
}

// EpochLine is a per-epoch line of metrics.jsonl: the mean training loss and,
// with a val cache, zero-shot top-1/top-5 in [0,1] and the val InfoNCE loss.
// Epoch counts completed epochs (1 after the first), as OpenCLIP numbers its
// end-of-epoch evaluations; step lines carry the 0-based epoch they run in.
type EpochLine struct {
	Kind    string   `json:"kind"` // "epoch"
	Epoch   int      `json:"epoch"`
	Step    int      `json:"step"` // steps done at the end of the epoch
	Loss    float64  `json:"loss"`
	Top1    *float64 `json:"top1,omitempty"`
	Top5    *float64 `json:"top5,omitempty"`
	ValLoss *float64 `json:"val_loss,omitempty"`
}

// metricsWriter appends JSON lines to OUT/metrics.jsonl, one write per line.
type metricsWriter struct {
	f *os.File
}

// openMetrics opens path for appending. keepSteps ≥ 0 first drops every line
// past a resumed checkpoint: step lines with step ≥ keepSteps and epoch lines
// ending after it (they belong to work the checkpoint does not hold and that
// the resumed run will do again). keepSteps < 0 starts a fresh file.
func openMetrics(path string, keepSteps int) (*metricsWriter, error) {
	if keepSteps < 0 {
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("tune: metrics: %w", err)
		}
		return &metricsWriter{f: f}, nil
	}
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("tune: metrics: %w", err)
	}
	var kept bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(old))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var head struct {
			Kind string `json:"kind"`
			Step int    `json:"step"`
		}
		if json.Unmarshal(line, &head) != nil {
			continue // a line torn by a crash
		}
		if (head.Kind == "step" && head.Step < keepSteps) || (head.Kind == "epoch" && head.Step <= keepSteps) {
			kept.Write(line)
			kept.WriteByte('\n')
		}
	}
	if err := atomicfile.WriteFile(path, kept.Bytes()); err != nil {
		return nil, fmt.Errorf("tune: metrics: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("tune: metrics: %w", err)
	}
	return &metricsWriter{f: f}, nil
}

func (w *metricsWriter) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("tune: metrics: %w", err)
	}
	if _, err := w.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("tune: metrics: %w", err)
	}
	return nil
}

func (w *metricsWriter) sync() error { return w.f.Sync() }

func (w *metricsWriter) close() error { return w.f.Close() }

// ReadMetrics reads a metrics.jsonl into its step and epoch lines.
func ReadMetrics(path string) ([]StepLine, []EpochLine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("tune: metrics: %w", err)
	}
	var steps []StepLine
	var epochs []EpochLine
	for i, line := range bytes.Split(b, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var head struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			return nil, nil, fmt.Errorf("tune: metrics %s: line %d: %w", path, i+1, err)
		}
		switch head.Kind {
		case "step":
			var s StepLine
			if err := json.Unmarshal(line, &s); err != nil {
				return nil, nil, fmt.Errorf("tune: metrics %s: line %d: %w", path, i+1, err)
			}
			steps = append(steps, s)
		case "epoch":
			var e EpochLine
			if err := json.Unmarshal(line, &e); err != nil {
				return nil, nil, fmt.Errorf("tune: metrics %s: line %d: %w", path, i+1, err)
			}
			epochs = append(epochs, e)
		}
	}
	return steps, epochs, nil
}
