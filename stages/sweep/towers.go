package sweep

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/litcache/litcache/internal/report"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/stages/evaluate"
)

// TowerComparison is the image-tower report of a sweep with a cache axis:
// the paper's "which classes/species (or genera, families, orders) prove
// most difficult for each model". Each tower's best member (highest final
// zero-shot top-1) is evaluated on its val cache and broken down by rank
// and supercategory.
type TowerComparison struct {
	Towers []TowerResult `json:"towers"`
}

// TowerResult is one image tower (one value of the cache axis).
type TowerResult struct {
	Label       string `json:"label"` // the cache axis's short value
	Cache       string `json:"cache"`
	ValCache    string `json:"val_cache,omitempty"`
	Fingerprint string `json:"fingerprint"`
	Model       string `json:"model"`
	Members     int    `json:"members"`  // members on this tower
	Finished    int    `json:"finished"` // of those, finished
	// Best is the member with the highest final top-1 (of those with a val
	// cache); Top1/Top5 are its final per-epoch figures, MeanTop1 the mean
	// over the tower's members with figures.
	Best string `json:"best_member,omitempty"`
	// BestSettings are the best member's values of the other varying axes
	// ("classes paper"), its legend in the tower chart.
	BestSettings string  `json:"best_settings,omitempty"`
	Top1         float64 `json:"top1"`
	Top5         float64 `json:"top5"`
	MeanTop1     float64 `json:"mean_top1"`
	// Eval is the best member's zero-shot report (per rank and
	// supercategory), written to EvalDir; EvalError says why there is none.
	Eval      *evaluate.Result `json:"eval,omitempty"`
	EvalDir   string           `json:"eval_dir,omitempty"`
	EvalError string           `json:"eval_error,omitempty"`
}

// EvalFolder is where CompareTowers writes a member's evaluation.
const EvalFolder = "eval"

// CompareTowers builds the comparison for a plan with a cache axis of more
// than one value (nil otherwise). A best member's evaluation is reused when
// its eval.json is newer than the member's final weights.
func CompareTowers(dir string, plan Plan, rows []Row, opt SummarizeOptions) (*TowerComparison, error) {
	if len(plan.Grid.Cache) < 2 {
		return nil, nil
	}
	logw := opt.Log
	if logw == nil {
		logw = io.Discard
	}
	labels := ShortLabels(plan.Grid.Cache)
	tc := &TowerComparison{}
	for ci, cache := range plan.Grid.Cache {
		t := TowerResult{Label: labels[ci], Cache: cache}
		best := -1
		var sum float64
		var n int
		for i, r := range rows {
			m := r.Member
			if m.Cache != cache {
				continue
			}
			t.Members++
			t.ValCache, t.Fingerprint, t.Model = m.ValCache, m.CacheFingerprint, m.CacheModel
			if r.Status == StatusFinished {
				t.Finished++
			}
			if !r.HasVal {
				continue
			}
			sum += r.Top1
			n++
			if r.Status == StatusFinished && (best < 0 || r.Top1 > rows[best].Top1) {
				best = i
			}
		}
		if n > 0 {
			t.MeanTop1 = sum / float64(n)
		}
		switch {
		case best >= 0:
			b := rows[best]
			t.Best, t.Top1, t.Top5 = b.Member.Name, b.Top1, b.Top5
			var other []string
			for _, st := range b.Member.Settings {
				if st.Axis != AxisCache {
					other = append(other, AxisTitle(st.Axis)+" "+st.Value)
				}
			}
			t.BestSettings = strings.Join(other, ", ")
			t.EvalDir = filepath.Join(dir, b.Member.Name, EvalFolder)
			res, err := evalBest(dir, plan, b.Member, t.EvalDir, opt, logw)
			if err != nil {
				t.EvalError = err.Error()
				fmt.Fprintf(logw, "sweep: tower %s: %v\n", t.Label, err)
			} else {
				t.Eval = &res
			}
		case t.ValCache == "":
			t.EvalError = "no val cache"
		default:
			t.EvalError = "no finished member with zero-shot figures yet"
		}
		tc.Towers = append(tc.Towers, t)
	}
	return tc, nil
}

// evalBest runs (or reuses) the zero-shot evaluation of member m on its val
// cache with the templates its per-epoch figures used.
func evalBest(dir string, plan Plan, m Member, out string, opt SummarizeOptions, logw io.Writer) (evaluate.Result, error) {
	final := filepath.Join(dir, m.Name, "final", "open_clip_model.safetensors")
	if res, ok := readEval(out, final); ok {
		return res, nil
	}
	cfg := evaluate.DefaultConfig()
	cfg.Cache, cfg.Split, cfg.Classes = m.ValCache, plan.ValSplit, m.Classes
	cfg.Weights, cfg.Vocab, cfg.ContextLen = filepath.Join(dir, m.Name), plan.Vocab, plan.ContextLen
	cfg.Out, cfg.Backend, cfg.Log, cfg.Quiet = out, opt.Backend, logw, opt.Log == nil
	cfg.Title = fmt.Sprintf("Zero-shot evaluation of sweep member %s (best on cache %s)", m.Name, m.Cache)
	if len(plan.EvalTemplates) > 0 {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return evaluate.Result{}, fmt.Errorf("sweep: %w", err)
		}
		path := filepath.Join(out, "templates.txt")
		if err := os.WriteFile(path, []byte(strings.Join(plan.EvalTemplates, "\n")+"\n"), 0o644); err != nil {
			return evaluate.Result{}, fmt.Errorf("sweep: %w", err)
		}
		cfg.Templates = path
	}
	fmt.Fprintf(logw, "sweep: evaluating %s, the best member on %s, per rank and supercategory → %s\n", m.Name, m.Cache, out)
	res, err := evaluate.Run(context.Background(), cfg)
	if err != nil {
		return res, fmt.Errorf("sweep: evaluate %s: %w", m.Name, err)
	}
	return res, nil
}

// readEval reads out/eval.json when it is newer than the weights it evaluated.
func readEval(out, weights string) (evaluate.Result, bool) {
	var res evaluate.Result
	path := filepath.Join(out, evaluate.ReportJSON)
	ei, err := os.Stat(path)
	if err != nil {
		return res, false
	}
	wi, err := os.Stat(weights)
	if err != nil || !ei.ModTime().After(wi.ModTime()) {
		return res, false
	}
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &res) != nil {
		return res, false
	}
	return res, true
}

// markdown writes the comparison's tables: one row per tower, then the best
// members' accuracy per rank and per supercategory, a column per tower.
func (tc *TowerComparison) markdown(b *strings.Builder) {
	b.WriteString("## Image towers\n\n")
	t := report.Table{Header: []string{"tower", "cache", "fingerprint", "model", "members (finished)", "best member", "top-1", "top-5", "mean top-1"},
		Right: []bool{false, false, false, false, true, false, true, true, true}}
	for _, tw := range tc.Towers {
		row := []string{tw.Label, tw.Cache, shortFingerprint(tw.Fingerprint), describeModel(tw.Model), fmt.Sprintf("%d (%d)", tw.Members, tw.Finished)}
		if tw.Best == "" {
			row = append(row, "–", "–", "–", "–")
		} else {
			row = append(row, tw.Best, fmt.Sprintf("%.4f", tw.Top1), fmt.Sprintf("%.4f", tw.Top5), fmt.Sprintf("%.4f", tw.MeanTop1))
		}
		t.AddRow(row...)
	}
	b.WriteString(t.Markdown())
	b.WriteString("\n")
	var evaluated []TowerResult
	for _, tw := range tc.Towers {
		if tw.Eval != nil {
			evaluated = append(evaluated, tw)
		} else if tw.EvalError != "" {
			fmt.Fprintf(b, "Tower %s: no breakdown (%s).\n\n", tw.Label, tw.EvalError)
		}
	}
	if len(evaluated) == 0 {
		return
	}
	header := []string{""}
	right := []bool{false}
	for _, tw := range evaluated {
		header = append(header, tw.Label+" top-1", tw.Label+" top-5")
		right = append(right, true, true)
	}
	b.WriteString("### Per taxonomic rank, best member of each tower\n\n")
	ranks := report.Table{Header: append([]string{"rank"}, header[1:]...), Right: right}
	for i, r := range evaluated[0].Eval.Ranks {
		row := []string{fmt.Sprintf("%s (%d taxa)", r.Rank, r.Taxa)}
		for _, tw := range evaluated {
			if i < len(tw.Eval.Ranks) {
				row = append(row, fmt.Sprintf("%.4f", tw.Eval.Ranks[i].Top1), fmt.Sprintf("%.4f", tw.Eval.Ranks[i].Top5))
			}
		}
		ranks.AddRow(row...)
	}
	b.WriteString(ranks.Markdown())
	b.WriteString("\n### Per supercategory, best member of each tower\n\n")
	sup := report.Table{Header: append([]string{"supercategory"}, header[1:]...), Right: right}
	for _, g := range evaluated[0].Eval.Supercategories {
		row := []string{fmt.Sprintf("%s (%d images)", g.Name, g.Images)}
		for _, tw := range evaluated {
			found := false
			for _, h := range tw.Eval.Supercategories {
				if h.Name == g.Name {
					row = append(row, fmt.Sprintf("%.4f", h.Top1), fmt.Sprintf("%.4f", h.Top5))
					found = true
				}
			}
			if !found {
				row = append(row, "–", "–")
			}
		}
		sup.AddRow(row...)
	}
	b.WriteString(sup.Markdown())
	b.WriteString("\n")
	for _, tw := range evaluated {
		fmt.Fprintf(b, "Tower %s: hardest classes and confused pairs in %s.\n\n",
			tw.Label, filepath.Join(tw.Best, EvalFolder, evaluate.ReportMarkdown))
	}
}

// rankChart is the best members' top-1 per rank, one bar colour per tower.
func (tc *TowerComparison) rankChart() (report.BarChart, bool) {
	c := report.BarChart{Title: "Zero-shot top-1 by taxonomic rank, best member of each image tower", YLabel: "top-1", YMax: 1, Labels: "%.2f"}
	for _, tw := range tc.Towers {
		if tw.Eval == nil {
			continue
		}
		if c.Categories == nil {
			for _, r := range tw.Eval.Ranks {
				c.Categories = append(c.Categories, r.Rank)
			}
			c.Refs = []report.RefLine{{Y: tw.Eval.Chance1, Label: "species chance"}}
		}
		name := tw.Label
		if tw.BestSettings != "" {
			name += " (best: " + tw.BestSettings + ")"
		}
		g := report.BarGroup{Name: name}
		for i := range c.Categories {
			v := 0.0
			if i < len(tw.Eval.Ranks) {
				v = tw.Eval.Ranks[i].Top1
			}
			g.Values = append(g.Values, v)
		}
		c.Groups = append(c.Groups, g)
	}
	return c, len(c.Groups) > 0
}

// describeModel shortens a manifest's model description (tower.Describe:
// "[family ]{config JSON} weights=W[ pool=P] | preprocessing", CLIP's
// without the family) to the tower's shape (tower.Config.Short), weights and
// pooling.
func describeModel(model string) string {
	family, rest := tower.CLIP, model
	if f, r, ok := strings.Cut(model, " {"); ok && !strings.ContainsAny(f, "{ ") {
		family, rest = f, "{"+r
	}
	dec := json.NewDecoder(strings.NewReader(rest))
	var raw json.RawMessage
	var cfg tower.Config
	err := dec.Decode(&raw)
	if err == nil {
		cfg, err = tower.ParseConfig(family, raw)
	}
	if !strings.HasPrefix(rest, "{") || err != nil {
		if len(model) > 60 {
			return model[:57] + "…"
		}
		return model
	}
	tail := rest[dec.InputOffset():]
	if j := strings.Index(tail, " |"); j >= 0 {
		tail = tail[:j]
	}
	return strings.Join(append([]string{cfg.Short()}, strings.Fields(tail)...), ", ")
}
