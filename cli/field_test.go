package cli

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/inat"
)

// The demo's bundle classifies the demo's val photos, read from their JPEG
// files, exactly as eval scored their cached embeddings: the same tower on
// the same pixels, the same class embeddings. Its top-1 over the photos is
// eval's top-1.
func TestDemoBundlePredictsAsEval(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo")
	if _, err := runEvalSweepDemo(t, "demo", "--out", out, "--species", "6", "--train-per-species", "8",
		"--val-per-species", "4", "--epochs", "2", "--warmup", "2", "--batch-size", "16", "--quiet"); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Eval   struct{ Top1 float64 }
		Bundle string `json:"bundle"`
	}
	b, err := os.ReadFile(filepath.Join(out, "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Bundle != filepath.Join(out, "demo.bundle.safetensors") {
		t.Fatalf("demo bundle %q", res.Bundle)
	}
	classes, err := inat.LoadClasses(filepath.Join(out, "shards", "train", "classes.json"))
	if err != nil {
		t.Fatal(err)
	}
	byDir := map[string]string{}
	for _, c := range classes {
		byDir[c.ImageDirName] = c.Name
	}
	csvOut, err := runEvalSweepDemo(t, "predict", "--bundle", res.Bundle, "--format", "csv", "--top", "1", "--quiet", filepath.Join(out, "data", "val"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	right := 0
	for _, r := range recs[1:] {
		if r[13] != "" {
			t.Fatalf("%s: %s", r[0], r[13])
		}
		if byDir[filepath.Base(filepath.Dir(r[0]))] == r[3] {
			right++
		}
	}
	n := len(recs) - 1
	if n != 24 {
		t.Fatalf("%d photos, want 6 species × 4", n)
	}
	if got := float64(right) / float64(n); got != res.Eval.Top1 {
		t.Errorf("predict top-1 %g (%d/%d), eval top-1 %g", got, right, n, res.Eval.Top1)
	}
}

func TestFieldFlagErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bundle needs its inputs", []string{"bundle"}, "Required flag"},
		{"bundle rejects arguments", []string{"bundle", "--run", dir, "--model", "clip-tiny", "--weights", "random:1", "--out", dir + "/b", "extra"}, `unexpected argument "extra"`},
		{"bundle names a non-run", []string{"bundle", "--run", dir, "--model", "clip-tiny", "--weights", "random:1", "--out", dir + "/b"}, "not a tune run"},
		{"bundle threads", []string{"bundle", "--run", dir, "--model", "clip-tiny", "--weights", "random:1", "--out", dir + "/b", "--threads", "-1", "--device", "cpu"}, "--threads -1"},
		{"predict needs a path", []string{"predict", "--bundle", dir + "/b"}, "no photo or folder"},
		{"predict options after paths", []string{"predict", "--bundle", dir + "/b", dir, "--rank", "genus"}, "before PATH"},
		{"predict format", []string{"predict", "--bundle", dir + "/b", "--format", "xml", dir}, "--format"},
		{"predict rank", []string{"predict", "--bundle", dir + "/b", "--rank", "tribe", dir}, "--rank"},
		{"predict missing bundle", []string{"predict", "--bundle", dir + "/b", "--device", "cpu", dir}, dir + "/b"},
		{"serve needs a bundle", []string{"serve"}, "Required flag"},
		{"serve upload limit", []string{"serve", "--bundle", dir + "/b", "--max-upload-mb", "0"}, "--max-upload"},
		{"serve timeout", []string{"serve", "--bundle", dir + "/b", "--timeout", "0s"}, "--timeout"},
		{"serve missing bundle", []string{"serve", "--bundle", dir + "/b", "--device", "cpu"}, dir + "/b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runEvalSweepDemo(t, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one containing %q", err, c.want)
			}
		})
	}
}
