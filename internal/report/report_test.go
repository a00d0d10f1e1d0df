package report

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTableMarkdown(t *testing.T) {
	tb := Table{Header: []string{"warm-up", "top-1"}, Right: []bool{false, true}}
	tb.AddRowf(3, 500, 0.25)
	tb.AddRow("a|b", "1")
	tb.AddRow("short")
	want := "" +
		"| warm-up | top-1 |\n" +
		"| ------- | ----: |\n" +
		"| 500     | 0.250 |\n" +
		"| a\\|b    |     1 |\n" +
		"| short   |       |\n"
	if got := tb.Markdown(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if (Table{}).Markdown() != "" {
		t.Fatal("empty table should render empty")
	}
}

func TestParseMetrics(t *testing.T) {
	cases := []struct {
		name         string
		in           string
		steps, epoch int
		err          string
	}{
		{"basic", `{"kind":"step","step":1,"epoch":0,"loss":2.5,"lr":0.001,"logit_scale":2.6,"samples_per_s":100}
{"kind":"step","step":2,"epoch":0,"loss":2.4,"lr":0.001,"logit_scale":2.6,"samples_per_s":100}
{"kind":"epoch","epoch":1,"step":2,"loss":2.45,"top1":0.5,"top5":0.9,"val_loss":2.0}
`, 2, 1, ""},
		{"resumed run logs steps again: later wins", `{"kind":"step","step":2,"loss":9}
{"kind":"step","step":1,"loss":1}
{"kind":"step","step":2,"loss":2}
`, 2, 0, ""},
		{"torn last line dropped", "{\"kind\":\"step\",\"step\":1,\"loss\":1}\n{\"kind\":\"st", 1, 0, ""},
		{"other kinds and blanks skipped", "\n{\"kind\":\"config\",\"x\":1}\n\n", 0, 0, ""},
		{"bad middle line", "{\"kind\":\"step\",\"step\":1}\nnot json\n{\"kind\":\"step\",\"step\":2}\n", 0, 0, "line 2"},
		{"step without step", "{\"kind\":\"step\",\"loss\":1}\n", 0, 0, "without \"step\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMetrics(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(m.Steps) != tc.steps || len(m.Epochs) != tc.epoch {
				t.Fatalf("got %d steps %d epochs, %v", len(m.Steps), len(m.Epochs), err)
			}
			for i := 1; i < len(m.Steps); i++ {
				if m.Steps[i].Step <= m.Steps[i-1].Step {
					t.Fatalf("steps out of order: %+v", m.Steps)
				}
			}
		})
	}
	m, _ := ParseMetrics(strings.NewReader("{\"kind\":\"step\",\"step\":2,\"loss\":9}\n{\"kind\":\"step\",\"step\":2,\"loss\":2}\n{\"kind\":\"epoch\",\"epoch\":1,\"loss\":3}\n"))
	if m.Steps[0].Loss != 2 || !math.IsNaN(m.Steps[0].LR) || !math.IsNaN(m.Epochs[0].Top1) {
		t.Fatalf("values: %+v %+v", m.Steps, m.Epochs)
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte(`{"kind":"step","step":1,"epoch":0,"loss":2.5,"lr":0.001}` + "\n"))
	f.Add([]byte(`{"kind":"epoch","epoch":1,"step":2,"loss":2.45,"top1":0.5,"top5":0.9}` + "\n"))
	f.Add([]byte("{\"kind\":\"st"))
	f.Add([]byte("\n\n[]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetrics(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for i := 1; i < len(m.Steps); i++ {
			if m.Steps[i].Step <= m.Steps[i-1].Step {
				t.Fatalf("steps not strictly increasing")
			}
		}
	})
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
		t.Fatalf("%s: %v too small", path, b)
	}
}

func TestCharts(t *testing.T) {
	dir := t.TempDir()
	if d := os.Getenv("LITCACHE_KEEP_PNG"); d != "" {
		dir = d // to look at them
	}
	var series []Series
	for i, w := range []float64{500, 1000, 2000} {
		var s Series
		s.Name = "warm-up " + []string{"500", "1000", "2000"}[i]
		for x := 0; x <= 40; x++ {
			s.X = append(s.X, float64(x*100))
			s.Y = append(s.Y, 4*math.Exp(-float64(x*100)/w)+0.5)
		}
		series = append(series, s)
	}
	series[0].Y[3] = math.NaN() // a missing value is skipped, not drawn
	line := LineChart{Title: "loss per step", XLabel: "step", YLabel: "loss", Series: series,
		Refs: []RefLine{{Y: 0.5, Label: "floor"}}}
	if err := line.Save(filepath.Join(dir, "loss.png")); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, filepath.Join(dir, "loss.png"))
	acc := LineChart{Title: "top-1 per epoch", XLabel: "epoch", YLabel: "top-1", Points: true, YMin: 0, YMax: 1,
		LegendBottom: true, Series: []Series{{Name: "a", X: []float64{1, 2, 3}, Y: []float64{0.2, 0.5, 0.7}}},
		Refs: []RefLine{{Y: 0.1, Label: "chance"}}}
	if err := acc.Save(filepath.Join(dir, "top1.png")); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, filepath.Join(dir, "top1.png"))
	bar := BarChart{Title: "accuracy per rank", YLabel: "accuracy", YMax: 1, Labels: "%.2f",
		Categories: []string{"kingdom", "phylum", "class", "order", "family", "genus", "species"},
		Groups: []BarGroup{{Name: "top-1", Values: []float64{1, .9, .8, .6, .5, .4, .3}},
			{Name: "top-5", Values: []float64{1, 1, .95, .9, .8, .7, .6}}},
		Refs: []RefLine{{Y: 0.2, Label: "chance (species)"}}}
	if err := bar.Save(filepath.Join(dir, "ranks.png")); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, filepath.Join(dir, "ranks.png"))
	if err := (BarChart{Categories: []string{"a"}, Groups: []BarGroup{{Name: "x", Values: []float64{1, 2}}}}).Save(filepath.Join(dir, "bad.png")); err == nil {
		t.Fatal("mismatched bar values accepted")
	}
}
