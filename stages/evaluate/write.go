package evaluate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/litcache/litcache/internal/report"
)

// Report file names inside Config.Out.
const (
	ReportJSON        = "eval.json"
	ReportMarkdown    = "eval.md"
	RankChart         = "accuracy_by_rank.png"
	SupercategoryPlot = "accuracy_by_supercategory.png"
)

// WriteReport writes eval.json, eval.md and the two bar charts into dir and
// returns their paths.
func WriteReport(dir string, res Result) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("evaluate: report: %w", err)
	}
	files := []string{filepath.Join(dir, ReportJSON), filepath.Join(dir, ReportMarkdown),
		filepath.Join(dir, RankChart)}

	var cats []string
	var r1, r5 []float64
	for _, r := range res.Ranks {
		cats = append(cats, fmt.Sprintf("%s (%d)", r.Rank, r.Taxa))
		r1 = append(r1, r.Top1)
		r5 = append(r5, r.Top5)
	}
	rank := report.BarChart{Title: "Zero-shot accuracy by taxonomic rank (taxa in brackets)", YLabel: "accuracy",
		Categories: cats, YMax: 1, Labels: "%.2f",
		Groups: []report.BarGroup{{Name: "top-1", Values: r1}, {Name: "top-5", Values: r5}},
		Refs:   []report.RefLine{{Y: res.Chance1, Label: "species chance (top-1)"}}}
	if err := rank.Save(files[2]); err != nil {
		return nil, fmt.Errorf("evaluate: report: %w", err)
	}
	if len(res.Supercategories) > 0 {
		var names []string
		var s1, s5 []float64
		for _, g := range res.Supercategories {
			names = append(names, fmt.Sprintf("%s (%d)", g.Name, g.Images))
			s1 = append(s1, g.Top1)
			s5 = append(s5, g.Top5)
		}
		sup := report.BarChart{Title: "Zero-shot species accuracy by supercategory (images in brackets)", YLabel: "accuracy",
			Categories: names, YMax: 1, Labels: "%.2f",
			Groups: []report.BarGroup{{Name: "top-1", Values: s1}, {Name: "top-5", Values: s5}},
			Refs:   []report.RefLine{{Y: res.Chance1, Label: "chance (top-1)"}}}
		p := filepath.Join(dir, SupercategoryPlot)
		if err := sup.Save(p); err != nil {
			return nil, fmt.Errorf("evaluate: report: %w", err)
		}
		files = append(files, p)
	}
	res.Files = files

	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("evaluate: report: %w", err)
	}
	if err := writeFile(files[0], append(js, '\n')); err != nil {
		return nil, err
	}
	if err := writeFile(files[1], []byte(Markdown(res))); err != nil {
		return nil, err
	}
	return files, nil
}

// Markdown renders a Result as the eval.md report.
func Markdown(res Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", res.Title)
	fmt.Fprintf(&b, "- text tower: `%s` (config `%s`)\n", res.Text, res.TextModel)
	fmt.Fprintf(&b, "- images: %d from cache `%s`, split `%s`", res.Images, res.Cache, res.Split)
	if res.ImageTower != "" {
		// The manifest's description may hold a whole config JSON: one line, bounded.
		desc := strings.Join(strings.Fields(res.ImageTower), " ")
		if r := []rune(desc); len(r) > 300 {
			desc = string(r[:300]) + "…"
		}
		fmt.Fprintf(&b, "\n- image tower: `%s`", desc)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "- classes: %d; templates: %s (%d)\n", res.Classes, res.Templates, res.NumTemplates)
	if res.Unknown > 0 {
		fmt.Fprintf(&b, "- %d images have a label outside classes.json (counted wrong)\n", res.Unknown)
	}
	b.WriteString("\n## Accuracy\n\n")
	acc := report.Table{Header: []string{"", "top-1", "top-5"}, Right: []bool{false, true, true}}
	acc.AddRowf(4, "zero-shot", res.Top1, res.Top5)
	acc.AddRowf(4, "chance", res.Chance1, res.Chance5)
	b.WriteString(acc.Markdown())

	b.WriteString("\n## By taxonomic rank\n\nA prediction counts at a rank when its taxon at that rank is the label's.\n\n")
	rk := report.Table{Header: []string{"rank", "taxa", "top-1", "top-5"}, Right: []bool{false, true, true, true}}
	for _, r := range res.Ranks {
		rk.AddRowf(4, r.Rank, r.Taxa, r.Top1, r.Top5)
	}
	b.WriteString(rk.Markdown())
	fmt.Fprintf(&b, "\n![accuracy by rank](%s)\n", RankChart)

	if len(res.Supercategories) > 0 {
		b.WriteString("\n## By supercategory\n\n")
		sc := report.Table{Header: []string{"supercategory", "classes", "images", "top-1", "top-5"}, Right: []bool{false, true, true, true, true}}
		for _, g := range res.Supercategories {
			sc.AddRowf(4, g.Name, g.Classes, g.Images, g.Top1, g.Top5)
		}
		b.WriteString(sc.Markdown())
		fmt.Fprintf(&b, "\n![accuracy by supercategory](%s)\n", SupercategoryPlot)
	}

	if len(res.Hardest) > 0 {
		b.WriteString("\n## Hardest classes\n\n")
		fmt.Fprintf(&b, "Ordered by the %s. The mean rank is the true class's place among all %d classes, averaged over its images (1 = always first); the margin is the cosine similarity by which the best wrong class beats it.\n\n", HardestOrder, res.Classes)
		hc := report.Table{Header: []string{"id", "class", "images", "mean rank", "margin", "top-1", "top-5", "most often taken for"},
			Right: []bool{true, false, true, true, true, true, true, false}}
		for _, h := range res.Hardest {
			name := h.Name
			if h.CommonName != "" && h.CommonName != h.Name {
				name = h.CommonName + " (" + h.Name + ")"
			}
			hc.AddRowf(3, h.ID, name, h.Images, h.MeanRank, h.Margin, h.Top1, h.Top5, h.MostConfusedName)
		}
		b.WriteString(hc.Markdown())
	}
	if len(res.Confused) > 0 {
		b.WriteString("\n## Most confused pairs\n\n")
		cp := report.Table{Header: []string{"true class", "predicted", "images", "share of class", "same genus"},
			Right: []bool{false, false, true, true, false}}
		for _, p := range res.Confused {
			same := ""
			if p.SameGenus {
				same = "yes"
			}
			cp.AddRowf(3, p.TrueName, p.PredName, p.Count, p.Fraction, same)
		}
		b.WriteString(cp.Markdown())
	}
	return b.String()
}

func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("evaluate: report: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("evaluate: report: %w", err)
	}
	return nil
}
