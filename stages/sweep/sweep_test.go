package sweep

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/stages/tune"
)

func TestMembers(t *testing.T) {
	base := tune.DefaultConfig()
	base.Warmup, base.LR, base.Epochs = 7, 0.5, 3
	cases := []struct {
		name  string
		grid  Grid
		names []string
	}{
		{"empty grid is one run", Grid{}, []string{"run"}},
		{"one value is not in the name", Grid{Warmup: []int{100}}, []string{"run"}},
		{"warm-ups", Grid{Warmup: []int{500, 1000, 2000}}, []string{"warmup-500", "warmup-1000", "warmup-2000"}},
		{"product, last axis fastest", Grid{Warmup: []int{1, 2}, LR: []float64{1e-3, 5e-4}, Epochs: []int{4}},
			[]string{"warmup-1_lr-0.001", "warmup-1_lr-0.0005", "warmup-2_lr-0.001", "warmup-2_lr-0.0005"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ms := Members(base, tc.grid)
			if len(ms) != len(tc.names) {
				t.Fatalf("%d members, want %d", len(ms), len(tc.names))
			}
			for i, m := range ms {
				if m.Name != tc.names[i] || m.Index != i {
					t.Errorf("member %d: %q (index %d), want %q", i, m.Name, m.Index, tc.names[i])
				}
			}
		})
	}
	ms := Members(base, Grid{Warmup: []int{1, 2}, LR: []float64{1e-3, 5e-4}, Epochs: []int{4}})
	m := ms[2]
	if m.Warmup != 2 || m.LR != 1e-3 || m.Epochs != 4 || m.BatchSize != base.BatchSize {
		t.Fatalf("member 2 settings: %+v", m)
	}
	if got := m.Label(); got != "warm-up 2, lr 0.001" {
		t.Errorf("label %q", got)
	}
	tc := m.TuneConfig(base, "/sweep")
	if tc.Warmup != 2 || tc.LR != 1e-3 || tc.Epochs != 4 || tc.Out != filepath.Join("/sweep", m.Name) {
		t.Fatalf("tune config: warmup %d lr %g epochs %d out %s", tc.Warmup, tc.LR, tc.Epochs, tc.Out)
	}
}

func TestPlanConflict(t *testing.T) {
	dir := t.TempDir()
	base := tune.DefaultConfig()
	p1 := Plan{Members: Members(base, Grid{Warmup: []int{1, 2}})}
	if err := writePlan(dir, p1); err != nil {
		t.Fatal(err)
	}
	if err := writePlan(dir, p1); err != nil {
		t.Fatalf("same plan again (another array task): %v", err)
	}
	p2 := Plan{Members: Members(base, Grid{Warmup: []int{1, 3}})}
	if err := writePlan(dir, p2); err == nil || !strings.Contains(err.Error(), "another sweep") {
		t.Fatalf("err %v, want a refusal to mix sweeps", err)
	}
	got, err := ReadPlan(dir)
	if err != nil || len(got.Members) != 2 {
		t.Fatalf("ReadPlan: %d members, %v", len(got.Members), err)
	}
	if _, err := ReadPlan(t.TempDir()); err == nil || !strings.Contains(err.Error(), "sweep folder") {
		t.Fatalf("err %v", err)
	}
}

func TestRunChecksMember(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Out = t.TempDir()
	cfg.Member = 3
	if _, _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "outside the grid of 3") {
		t.Fatalf("err %v", err)
	}
	cfg.Member = 0
	if _, _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--cache") {
		t.Fatalf("err %v, want the member's config checked first", err)
	}
}

// fakeMember writes a metrics.jsonl as tune does (epochs numbered from 0).
func fakeMember(t *testing.T, dir string, warmup, steps, epochs int, val, finished bool) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	var b strings.Builder
	spe := steps / epochs
	for s := 0; s < steps; s++ {
		lr := 1e-3
		if s < warmup {
			lr = 1e-3 * float64(s+1) / float64(warmup)
		}
		loss := 3*math.Exp(-float64(s)/float64(20+warmup)) + 0.2
		fmt.Fprintf(&b, `{"kind":"step","step":%d,"epoch":%d,"loss":%g,"lr":%g,"logit_scale":2.6,"samples_per_s":100}`+"\n", s, s/spe, loss, lr)
		if (s+1)%spe == 0 {
			e := s / spe
			line := map[string]any{"kind": "epoch", "epoch": e, "step": s + 1, "loss": loss}
			if val {
				line["top1"] = 0.2 + 0.6*float64(e+1)/float64(epochs)*float64(100)/float64(100+warmup)
				line["top5"] = math.Min(1, 0.5+0.1*float64(e+1))
				line["val_loss"] = loss + 0.1
			}
			js, _ := json.Marshal(line)
			b.Write(append(js, '\n'))
		}
	}
	os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte(b.String()), 0o644)
	if finished {
		os.MkdirAll(filepath.Join(dir, "final"), 0o755)
		os.WriteFile(filepath.Join(dir, "final", "open_clip_model.safetensors"), []byte("x"), 0o644)
	}
}

func TestSummarize(t *testing.T) {
	dir := t.TempDir()
	if d := os.Getenv("LITCACHE_KEEP_PNG"); d != "" {
		dir = d
	}
	classes := filepath.Join(dir, "classes.json")
	var cls []inat.Class
	for i := 0; i < 20; i++ {
		cls = append(cls, inat.Class{ID: i, Name: fmt.Sprint("s", i), Caption: "c"})
	}
	if err := inat.WriteClasses(classes, cls); err != nil {
		t.Fatal(err)
	}
	base := tune.DefaultConfig()
	base.Classes = classes
	members := Members(base, Grid{Warmup: []int{5, 20, 60, 80}})
	if err := writePlan(dir, Plan{Members: members, Classes: classes}); err != nil {
		t.Fatal(err)
	}
	fakeMember(t, filepath.Join(dir, members[0].Name), 5, 120, 6, true, true)
	fakeMember(t, filepath.Join(dir, members[1].Name), 20, 120, 6, true, true)
	fakeMember(t, filepath.Join(dir, members[2].Name), 60, 60, 3, true, false) // still running
	// members[3] has not started

	s, err := Summarize(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Classes != 20 || s.Chance1 != 0.05 || s.Chance5 != 0.25 {
		t.Fatalf("chance: %+v", s)
	}
	want := []struct {
		status        string
		steps, epochs int
	}{{StatusFinished, 120, 6}, {StatusFinished, 120, 6}, {StatusPartial, 60, 3}, {StatusMissing, 0, 0}}
	for i, w := range want {
		r := s.Rows[i]
		if r.Status != w.status || r.Steps != w.steps || r.Epochs != w.epochs {
			t.Errorf("row %d: %s %d steps %d epochs, want %+v", i, r.Status, r.Steps, r.Epochs, w)
		}
	}
	if r := s.Rows[0]; !r.HasVal || r.BestEpoch != 6 || r.Top1 != r.BestTop1 {
		t.Errorf("row 0: %+v", r)
	}
	md, _ := os.ReadFile(filepath.Join(dir, SummaryMarkdown))
	for _, w := range []string{"| warmup-5 ", "| chance", "0.0500", PlotTop1, "missing"} {
		if !strings.Contains(string(md), w) {
			t.Errorf("summary.md lacks %q:\n%s", w, md)
		}
	}
	pngs := 0
	for _, f := range s.Files {
		if !strings.HasSuffix(f, ".png") {
			continue
		}
		pngs++
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(fh); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		fh.Close()
	}
	if pngs != 6 {
		t.Errorf("%d plots, want 6 (loss/step, loss/epoch, top-1, top-5, val loss, lr)", pngs)
	}
	var js Summary
	b, _ := os.ReadFile(filepath.Join(dir, SummaryJSON))
	if err := json.Unmarshal(b, &js); err != nil || len(js.Rows) != 4 {
		t.Fatalf("summary.json: %v", err)
	}
}

func TestMovingAverage(t *testing.T) {
	got := movingAverage([]float64{1, 2, 3, math.NaN(), 5}, 2)
	want := []float64{1, 1.5, 2.5, 3, 5}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
