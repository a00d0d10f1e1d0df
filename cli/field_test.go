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
// eval's top-1. The same holds for a run on a cache of a DINOv2 tower (whose
// final/ holds the text tower alone): the bundle takes the cache's recorded
// tower, or the one --model/--weights/--pool name, and no other.
func TestDemoBundlePredictsAsEval(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo")
	if msg, err := runApp(t, "", "demo", "--out", out, "--species", "6", "--train-per-species", "8",
		"--val-per-species", "4", "--epochs", "2", "--warmup", "2", "--batch-size", "16", "--quiet"); err != nil {
		t.Fatalf("%v\n%s", err, msg)
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
	classes := filepath.Join(out, "shards", "train", "classes.json")
	if got := predictTop1(t, res.Bundle, classes, filepath.Join(out, "data", "val")); got != res.Eval.Top1 {
		t.Errorf("predict top-1 %g, eval top-1 %g", got, res.Eval.Top1)
	}

	t.Run("dinov2", func(t *testing.T) {
		cache, run := filepath.Join(out, "cache-dinov2"), filepath.Join(out, "run-dinov2")
		shards, _ := filepath.Glob(filepath.Join(out, "shards", "train", "*.tar"))
		val, _ := filepath.Glob(filepath.Join(out, "shards", "val", "*.tar"))
		tower := []string{"--model", "dinov2-tiny", "--pool", "cls+mean", "--weights", "random:7"}
		for _, sp := range []struct {
			split  string
			shards []string
		}{{"train", shards}, {"val", val}} {
			args := append([]string{"extract", "--shards", strings.Join(sp.shards, ","), "--cache", cache, "--split", sp.split,
				"--dtype", "float32", "--device", "cpu", "--quiet"}, tower...)
			if msg, err := runApp(t, "", args...); err != nil {
				t.Fatalf("%v\n%s", err, msg)
			}
		}
		if msg, err := runApp(t, "", "tune", "--cache", cache, "--classes", classes, "--model", filepath.Join(out, "demo_model.json"),
			"--epochs", "2", "--batch-size", "16", "--warmup", "2", "--lr", "3e-3", "--out", run, "--device", "cpu", "--quiet"); err != nil {
			t.Fatalf("%v\n%s", err, msg)
		}
		evalOut := filepath.Join(out, "eval-dinov2")
		if msg, err := runApp(t, "", "eval", "--cache", cache, "--split", "val", "--classes", classes, "--weights", run,
			"--out", evalOut, "--device", "cpu", "--quiet"); err != nil {
			t.Fatalf("%v\n%s", err, msg)
		}
		var ev struct{ Top1 float64 }
		if b, err := os.ReadFile(filepath.Join(evalOut, "eval.json")); err != nil || json.Unmarshal(b, &ev) != nil {
			t.Fatalf("eval.json: %v", err)
		}

		// The cache's recorded tower, then the same tower named.
		recorded, named := filepath.Join(out, "recorded.bundle.safetensors"), filepath.Join(out, "named.bundle.safetensors")
		if msg, err := runApp(t, "", "bundle", "--run", run, "--out", recorded, "--device", "cpu", "--quiet"); err != nil {
			t.Fatalf("%v\n%s", err, msg)
		}
		args := append([]string{"bundle", "--run", run, "--out", named, "--device", "cpu", "--quiet"}, tower...)
		if msg, err := runApp(t, "", args...); err != nil {
			t.Fatalf("%v\n%s", err, msg)
		}
		for _, bundle := range []string{recorded, named} {
			if got := predictTop1(t, bundle, classes, filepath.Join(out, "data", "val")); got != ev.Top1 {
				t.Errorf("%s: predict top-1 %g, eval top-1 %g", filepath.Base(bundle), got, ev.Top1)
			}
		}
		// Another pooling of the same weights makes other embeddings: refused.
		args = []string{"bundle", "--run", run, "--out", filepath.Join(out, "cls.bundle.safetensors"), "--device", "cpu", "--quiet",
			"--model", "dinov2-tiny", "--pool", "cls", "--weights", "random:7"}
		if _, err := runApp(t, "", args...); err == nil || !strings.Contains(err.Error(), "fingerprint") {
			t.Errorf("bundle with --pool cls: %v, want a fingerprint refusal", err)
		}
	})
}

// predictTop1 runs predict --top 1 on the photos under dir (one folder per
// class, as the demo writes them) and returns the share whose best
// prediction is the photo's class.
func predictTop1(t *testing.T, bundle, classesFile, dir string) float64 {
	t.Helper()
	classes, err := inat.LoadClasses(classesFile)
	if err != nil {
		t.Fatal(err)
	}
	byDir := map[string]string{}
	for _, c := range classes {
		byDir[c.ImageDirName] = c.Name
	}
	csvOut, msg, err := runCommand(t, "predict", "--bundle", bundle, "--format", "csv", "--top", "1", "--device", "cpu", "--quiet", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, msg)
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
	return float64(right) / float64(n)
}

func TestFieldFlagErrors(t *testing.T) {
	dir := t.TempDir()
	notBundle := filepath.Join(dir, "not.bundle.safetensors") // exists: the flag checks come first
	if err := os.WriteFile(notBundle, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bundle needs its inputs", []string{"bundle"}, "--run is required"},
		{"bundle needs its output", []string{"bundle", "--run", dir}, "--out is required"},
		{"bundle model without weights", []string{"bundle", "--run", dir, "--model", "clip-tiny", "--out", dir + "/b"}, "--model and --weights"},
		{"bundle pool without model", []string{"bundle", "--run", dir, "--pool", "cls", "--out", dir + "/b"}, "--pool does nothing without --model"},
		{"bundle batch size", []string{"bundle", "--run", dir, "--out", dir + "/b", "--batch-size", "0"}, "--batch-size 0"},
		{"bundle device", []string{"bundle", "--run", dir, "--out", dir + "/b", "--device", "tpu"}, `--device "tpu"`},
		{"bundle rejects arguments", []string{"bundle", "--run", dir, "--model", "clip-tiny", "--weights", "random:1", "--out", dir + "/b", "extra"}, `unexpected argument "extra"`},
		{"bundle names a non-run", []string{"bundle", "--run", dir, "--model", "clip-tiny", "--weights", "random:1", "--out", dir + "/b"}, "not a tune run"},
		{"bundle threads", []string{"bundle", "--run", dir, "--model", "clip-tiny", "--weights", "random:1", "--out", dir + "/b", "--threads", "-1", "--device", "cpu"}, "--threads -1"},
		{"predict needs a path", []string{"predict", "--bundle", dir + "/b"}, "no photo or folder"},
		{"predict options after paths", []string{"predict", "--bundle", dir + "/b", dir, "--rank", "genus"}, "before PATH"},
		{"predict format", []string{"predict", "--bundle", dir + "/b", "--format", "xml", dir}, "--format"},
		{"predict rank", []string{"predict", "--bundle", dir + "/b", "--rank", "tribe", dir}, "--rank"},
		{"predict missing bundle", []string{"predict", "--bundle", dir + "/b", "--device", "cpu", dir}, dir + "/b"},
		{"serve needs a bundle", []string{"serve"}, "--bundle is required"},
		{"serve gpu with cpu", []string{"serve", "--bundle", notBundle, "--device", "cpu", "--gpu", "1"}, "--gpu does nothing with --device cpu"},
		{"serve upload limit", []string{"serve", "--bundle", dir + "/b", "--max-upload-mb", "0"}, "--max-upload"},
		{"serve timeout", []string{"serve", "--bundle", dir + "/b", "--timeout", "0s"}, "--timeout"},
		{"serve missing bundle", []string{"serve", "--bundle", dir + "/b", "--device", "cpu"}, dir + "/b"},
		{"serve not a bundle", []string{"serve", "--bundle", notBundle, "--device", "cpu"}, notBundle},
		{"predict gpu", []string{"predict", "--bundle", notBundle, "--gpu", "-1", dir}, "--gpu -1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runApp(t, "", c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one containing %q", err, c.want)
			}
		})
	}
}
