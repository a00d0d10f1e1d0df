package sweep

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/report"
)

// Member statuses in a summary.
const (
	StatusFinished = "finished" // final/ written
	StatusPartial  = "partial"  // metrics but no final/ (running, stopped, or killed)
	StatusMissing  = "missing"  // no metrics yet
)

// Row is one member's line of the summary.
type Row struct {
	Member Member `json:"member"`
	Status string `json:"status"`
	Steps  int    `json:"steps"`  // steps logged
	Epochs int    `json:"epochs"` // epochs logged
	// Loss is the last epoch's mean training loss (the last step's when no
	// epoch finished; NaN-free: 0 with Steps = 0).
	Loss float64 `json:"loss"`
	// HasVal tells whether the epochs carry zero-shot accuracy.
	HasVal bool `json:"has_val"`
	// Top1/Top5 after the last epoch; BestTop1 and the epoch (1-based) it came at.
	Top1      float64 `json:"top1"`
	Top5      float64 `json:"top5"`
	BestTop1  float64 `json:"best_top1"`
	BestEpoch int     `json:"best_epoch"`
}

// Summary is summary.json: the table of members and the files written.
type Summary struct {
	Dir string `json:"dir"`
	// Classes is the number of classes (0 when classes.json was unreadable);
	// Chance1/Chance5 the zero-shot chance levels 1/K and 5/K.
	Classes int     `json:"classes"`
	Chance1 float64 `json:"chance_top1"`
	Chance5 float64 `json:"chance_top5"`
	Rows    []Row   `json:"rows"`
	// Towers compares the image towers of a sweep with a cache axis.
	Towers *TowerComparison `json:"towers,omitempty"`
	Files  []string         `json:"files"`
}

// Summary file names inside the sweep folder.
const (
	SummaryMarkdown = "summary.md"
	SummaryJSON     = "summary.json"
	PlotLossStep    = "loss_per_step.png"
	PlotLossEpoch   = "loss_per_epoch.png"
	PlotTop1        = "top1_per_epoch.png"
	PlotTop5        = "top5_per_epoch.png"
	PlotLR          = "lr_per_step.png"
	PlotValLoss     = "val_loss_per_epoch.png"
	PlotTowerRanks  = "towers_top1_by_rank.png"
)

// SummarizeOptions are what Summarize needs beyond the sweep folder.
type SummarizeOptions struct {
	// Backend runs the zero-shot evaluation of each tower's best member
	// (nil: the CPU backend).
	Backend backend.Backend
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// Summarize reads the plan and every member's metrics.jsonl under dir and
// writes summary.md, summary.json and the overlay plots: training loss per
// step (moving average) and per epoch, zero-shot top-1 and top-5 per epoch
// with the chance level, the val loss per epoch, and the learning rate per
// step (where the warm-ups differ). Members without metrics are listed as
// missing. It works while members still run (SLURM arrays). With a cache
// axis it adds the image-tower comparison (CompareTowers).
func Summarize(dir string) (*Summary, error) {
	return SummarizeWith(dir, SummarizeOptions{})
}

// SummarizeWith is Summarize with options.
func SummarizeWith(dir string, opt SummarizeOptions) (*Summary, error) {
	plan, err := ReadPlan(dir)
	if err != nil {
		return nil, err
	}
	s := &Summary{Dir: dir}
	if plan.Classes != "" {
		if cls, err := inat.LoadClasses(plan.Classes); err == nil {
			s.Classes = len(cls)
			s.Chance1 = 1 / float64(len(cls))
			s.Chance5 = float64(min(5, len(cls))) / float64(len(cls))
		}
	}

	metrics := make([]report.Metrics, len(plan.Members))
	epochBase := math.Inf(1) // 0 when tune numbers epochs from 0
	for i, m := range plan.Members {
		row := Row{Member: m, Status: StatusMissing}
		mdir := filepath.Join(dir, m.Name)
		mt, err := report.ReadMetrics(filepath.Join(mdir, "metrics.jsonl"))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("sweep: member %s: %w", m.Name, err)
		default:
			metrics[i] = mt
			row.Status = StatusPartial
			if done(mdir) {
				row.Status = StatusFinished
			}
			for _, e := range mt.Epochs {
				epochBase = math.Min(epochBase, e.Epoch)
			}
		}
		s.Rows = append(s.Rows, row)
	}
	if math.IsInf(epochBase, 1) {
		epochBase = 0
	}
	epochX := func(e float64) float64 { return e - epochBase + 1 } // epochs completed

	for i := range s.Rows {
		row, mt := &s.Rows[i], metrics[i]
		row.Steps, row.Epochs = len(mt.Steps), len(mt.Epochs)
		if n := len(mt.Epochs); n > 0 {
			last := mt.Epochs[n-1]
			row.Loss = finite(last.Loss)
			if !math.IsNaN(last.Top1) {
				row.HasVal = true
				row.Top1, row.Top5 = last.Top1, finite(last.Top5)
			}
			for _, e := range mt.Epochs {
				if !math.IsNaN(e.Top1) && e.Top1 > row.BestTop1 {
					row.BestTop1, row.BestEpoch = e.Top1, int(epochX(e.Epoch))
				}
			}
		} else if n := len(mt.Steps); n > 0 {
			row.Loss = finite(mt.Steps[n-1].Loss)
		}
	}

	if s.Towers, err = CompareTowers(dir, plan, s.Rows, opt); err != nil {
		return nil, err
	}
	files, err := s.plots(plan, metrics, epochX)
	if err != nil {
		return nil, err
	}
	s.Files = append([]string{filepath.Join(dir, SummaryMarkdown), filepath.Join(dir, SummaryJSON)}, files...)
	if err := os.WriteFile(s.Files[0], []byte(s.Markdown()), 0o644); err != nil {
		return nil, fmt.Errorf("sweep: summary: %w", err)
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sweep: summary: %w", err)
	}
	if err := os.WriteFile(s.Files[1], append(js, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("sweep: summary: %w", err)
	}
	return s, nil
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

// plots draws the overlay charts that have data and returns their paths.
func (s *Summary) plots(plan Plan, metrics []report.Metrics, epochX func(float64) float64) ([]string, error) {
	var files []string
	save := func(name string, c report.LineChart) error {
		if len(c.Series) == 0 {
			return nil
		}
		p := filepath.Join(s.Dir, name)
		if err := c.Save(p); err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		files = append(files, p)
		return nil
	}
	maxSteps := 0
	for _, m := range metrics {
		maxSteps = max(maxSteps, len(m.Steps))
	}
	window := max(1, maxSteps/50)

	var lossStep, lr, lossEpoch, top1, top5, valLoss []report.Series
	groups := lineGroups(plan.Members)
	for i, m := range plan.Members {
		mt := metrics[i]
		name := m.Label()
		g := groups.groups[i]
		if len(mt.Steps) > 0 {
			var xs, ys, ls []float64
			for _, st := range mt.Steps {
				xs = append(xs, float64(st.Step))
				ys = append(ys, st.Loss)
				ls = append(ls, st.LR)
			}
			lossStep = append(lossStep, g.series(name, xs, movingAverage(ys, window)))
			lr = append(lr, g.series(name, xs, ls))
		}
		if len(mt.Epochs) > 0 {
			var xs, l, t1, t5, vl []float64
			for _, e := range mt.Epochs {
				xs = append(xs, epochX(e.Epoch))
				l = append(l, e.Loss)
				t1 = append(t1, e.Top1)
				t5 = append(t5, e.Top5)
				vl = append(vl, e.ValLoss)
			}
			lossEpoch = append(lossEpoch, g.series(name, xs, l))
			if anyFinite(t1) {
				top1 = append(top1, g.series(name, xs, t1))
				top5 = append(top5, g.series(name, xs, t5))
			}
			if anyFinite(vl) {
				valLoss = append(valLoss, g.series(name, xs, vl))
			}
		}
	}
	title := "Training loss per step"
	if window > 1 {
		title += fmt.Sprintf(" (moving average over %d steps)", window)
	}
	var chance1, chance5 []report.RefLine
	if s.Classes > 0 {
		chance1 = []report.RefLine{{Y: s.Chance1, Label: fmt.Sprintf("chance (1/%d)", s.Classes)}}
		chance5 = []report.RefLine{{Y: s.Chance5, Label: fmt.Sprintf("chance (%d/%d)", min(5, s.Classes), s.Classes)}}
	}
	charts := []struct {
		name  string
		chart report.LineChart
	}{
		{PlotLossStep, report.LineChart{Title: title, XLabel: "step", YLabel: "contrastive loss", Series: lossStep}},
		{PlotLossEpoch, report.LineChart{Title: "Mean training loss per epoch", XLabel: "epoch", YLabel: "contrastive loss", Series: lossEpoch, Points: true, IntegerX: true}},
		{PlotTop1, report.LineChart{Title: "Zero-shot top-1 accuracy per epoch (val)", XLabel: "epoch", YLabel: "top-1", Series: top1, Refs: chance1, Points: true, FromZero: true, Fraction: true, IntegerX: true}},
		{PlotTop5, report.LineChart{Title: "Zero-shot top-5 accuracy per epoch (val)", XLabel: "epoch", YLabel: "top-5", Series: top5, Refs: chance5, Points: true, FromZero: true, Fraction: true, IntegerX: true}},
		{PlotValLoss, report.LineChart{Title: "Val contrastive loss per epoch", XLabel: "epoch", YLabel: "contrastive loss", Series: valLoss, Points: true, IntegerX: true}},
		{PlotLR, report.LineChart{Title: "Learning rate per step", XLabel: "step", YLabel: "learning rate", Series: lr, FromZero: true}},
	}
	for _, c := range charts {
		c.chart.Grouped = groups.grouped()
		if c.chart.Grouped {
			c.chart.Title += groups.caption
		}
		if err := save(c.name, c.chart); err != nil {
			return nil, err
		}
	}
	if s.Towers != nil {
		if c, ok := s.Towers.rankChart(); ok {
			p := filepath.Join(s.Dir, PlotTowerRanks)
			if err := c.Save(p); err != nil {
				return nil, fmt.Errorf("sweep: %w", err)
			}
			files = append(files, p)
		}
	}
	return files, nil
}

func anyFinite(xs []float64) bool {
	for _, x := range xs {
		if !math.IsNaN(x) {
			return true
		}
	}
	return false
}

// movingAverage is the trailing mean over up to w values (NaNs skipped).
func movingAverage(ys []float64, w int) []float64 {
	if w <= 1 {
		return ys
	}
	out := make([]float64, len(ys))
	sum, n := 0.0, 0
	for i, y := range ys {
		if !math.IsNaN(y) {
			sum += y
			n++
		}
		if j := i - w; j >= 0 && !math.IsNaN(ys[j]) {
			sum -= ys[j]
			n--
		}
		if n > 0 {
			out[i] = sum / float64(n)
		} else {
			out[i] = math.NaN()
		}
	}
	return out
}

// Markdown renders the summary table.
func (s *Summary) Markdown() string {
	var b strings.Builder
	b.WriteString("# Sweep summary\n\n")
	if s.Classes > 0 {
		fmt.Fprintf(&b, "%d classes: chance top-1 %.4f, top-5 %.4f.\n\n", s.Classes, s.Chance1, s.Chance5)
	}
	b.WriteString(s.Table().Markdown())
	b.WriteString("\n")
	if t, ok := s.ValuesTable(); ok {
		b.WriteString("## Axis values\n\n")
		b.WriteString(t.Markdown())
		b.WriteString("\n")
	}
	if s.Towers != nil {
		s.Towers.markdown(&b)
	}
	for _, f := range s.Files {
		if strings.HasSuffix(f, ".png") {
			name := filepath.Base(f)
			fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(name, ".png"), name)
		}
	}
	return b.String()
}

// Table is the members' table: settings, status, steps, final loss, top-1/top-5.
func (s *Summary) Table() report.Table {
	var axes []string
	if len(s.Rows) > 0 {
		for _, st := range s.Rows[0].Member.Settings {
			axes = append(axes, AxisTitle(st.Axis))
		}
	}
	t := report.Table{Header: append(append([]string{"member"}, axes...),
		"status", "steps run", "epochs run", "train loss", "top-1", "top-5", "best top-1 (epoch)")}
	for range append([]string{"member"}, axes...) {
		t.Right = append(t.Right, false)
	}
	t.Right = append(t.Right, false, true, true, true, true, true, true)
	for _, r := range s.Rows {
		cells := []string{r.Member.Name}
		for _, st := range r.Member.Settings {
			cells = append(cells, st.Value)
		}
		cells = append(cells, r.Status, strconv.Itoa(r.Steps), strconv.Itoa(r.Epochs))
		if r.Steps == 0 {
			cells = append(cells, "", "", "", "")
		} else if r.HasVal {
			cells = append(cells, fmt.Sprintf("%.4f", r.Loss), fmt.Sprintf("%.4f", r.Top1), fmt.Sprintf("%.4f", r.Top5),
				fmt.Sprintf("%.4f (%d)", r.BestTop1, r.BestEpoch))
		} else {
			cells = append(cells, fmt.Sprintf("%.4f", r.Loss), "–", "–", "–")
		}
		t.AddRow(cells...)
	}
	if s.Classes > 0 {
		cells := []string{"chance"}
		for range axes {
			cells = append(cells, "")
		}
		cells = append(cells, "", "", "", "", fmt.Sprintf("%.4f", s.Chance1), fmt.Sprintf("%.4f", s.Chance5), "")
		t.AddRow(cells...)
	}
	return t
}
