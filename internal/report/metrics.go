package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// StepMetric is one "step" line of tune's metrics.jsonl.
type StepMetric struct {
	Step        int
	Epoch       float64
	Loss        float64
	LR          float64
	LogitScale  float64
	SamplesPerS float64
}

// EpochMetric is one "epoch" line: mean training loss and, when tune had a val
// cache, zero-shot top-1/top-5 in [0,1] and the val loss (NaN when absent).
type EpochMetric struct {
	Epoch   float64
	Step    int
	Loss    float64
	Top1    float64
	Top5    float64
	ValLoss float64
}

// Metrics is a run's metrics.jsonl, steps and epochs in increasing order.
type Metrics struct {
	Steps  []StepMetric
	Epochs []EpochMetric
}

// line is the union of both line kinds; pointers tell absent from zero.
type line struct {
	Kind        string   `json:"kind"`
	Step        *int     `json:"step"`
	Epoch       *float64 `json:"epoch"`
	Loss        *float64 `json:"loss"`
	LR          *float64 `json:"lr"`
	LogitScale  *float64 `json:"logit_scale"`
	SamplesPerS *float64 `json:"samples_per_s"`
	Top1        *float64 `json:"top1"`
	Top5        *float64 `json:"top5"`
	ValLoss     *float64 `json:"val_loss"`
}

func val(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// ReadMetrics reads a metrics.jsonl file (see ParseMetrics).
func ReadMetrics(path string) (Metrics, error) {
	f, err := os.Open(path)
	if err != nil {
		return Metrics{}, fmt.Errorf("report: metrics: %w", err)
	}
	defer f.Close()
	m, err := ParseMetrics(f)
	if err != nil {
		return m, fmt.Errorf("report: metrics %s: %w", path, err)
	}
	return m, nil
}

// ParseMetrics reads JSON lines of kind "step" and "epoch"; other kinds and
// blank lines are skipped. A last line cut short (a run killed while writing)
// is dropped; a malformed line elsewhere is an error naming its number. When a
// resumed run logged a step or epoch again, the later line wins.
func ParseMetrics(r io.Reader) (Metrics, error) {
	var m Metrics
	br := bufio.NewReader(r)
	steps := map[int]StepMetric{}
	epochs := map[float64]EpochMetric{}
	for n := 1; ; n++ {
		raw, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return m, fmt.Errorf("line %d: %w", n, err)
		}
		complete := err == nil
		text := bytes.TrimSpace(raw)
		if len(text) > 0 {
			var l line
			if jerr := json.Unmarshal(text, &l); jerr != nil {
				if !complete {
					break // a torn last line
				}
				return m, fmt.Errorf("line %d: %w", n, jerr)
			}
			switch l.Kind {
			case "step":
				if l.Step == nil {
					return m, fmt.Errorf("line %d: step line without \"step\"", n)
				}
				steps[*l.Step] = StepMetric{Step: *l.Step, Epoch: val(l.Epoch), Loss: val(l.Loss),
					LR: val(l.LR), LogitScale: val(l.LogitScale), SamplesPerS: val(l.SamplesPerS)}
			case "epoch":
				if l.Epoch == nil {
					return m, fmt.Errorf("line %d: epoch line without \"epoch\"", n)
				}
				e := EpochMetric{Epoch: *l.Epoch, Loss: val(l.Loss), Top1: val(l.Top1),
					Top5: val(l.Top5), ValLoss: val(l.ValLoss)}
				if l.Step != nil {
					e.Step = *l.Step
				}
				epochs[*l.Epoch] = e
			}
		}
		if !complete {
			break
		}
	}
	for _, s := range steps {
		m.Steps = append(m.Steps, s)
	}
	sort.Slice(m.Steps, func(i, j int) bool { return m.Steps[i].Step < m.Steps[j].Step })
	for _, e := range epochs {
		m.Epochs = append(m.Epochs, e)
	}
	sort.Slice(m.Epochs, func(i, j int) bool { return m.Epochs[i].Epoch < m.Epochs[j].Epoch })
	return m, nil
}
