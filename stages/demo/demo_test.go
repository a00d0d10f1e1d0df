package demo

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoSmall runs the whole demo at a small size: every stage for real,
// and the tuned text towers must classify the synthetic val images well
// above chance while the untuned one stays near it.
func TestDemoSmall(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Out = t.TempDir()
	cfg.Species, cfg.TrainPerSpecies, cfg.ValPerSpecies = 8, 16, 6
	cfg.ImageSize, cfg.Epochs, cfg.BatchSize = 48, 6, 32
	cfg.Warmups = []int{2, 12}
	cfg.Threads = 2
	if raceEnabled { // a few steps only: the mechanics; .ci/run checks the accuracy without -race
		t.Log("race detector on: accuracy not asserted (run without -race for that, as .ci/run does)")
		cfg.Species, cfg.TrainPerSpecies, cfg.ValPerSpecies = 6, 8, 4
		cfg.Epochs, cfg.BatchSize, cfg.Warmups = 2, 16, []int{1, 3}
	}
	var log bytes.Buffer
	cfg.Log = &log
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, log.String())
	}
	if res.Classes != cfg.Species || res.Train != cfg.Species*cfg.TrainPerSpecies || res.Val != cfg.Species*cfg.ValPerSpecies {
		t.Fatalf("classes %d train %d val %d", res.Classes, res.Train, res.Val)
	}
	if len(res.Members) != 2 {
		t.Fatalf("%d sweep members, want 2", len(res.Members))
	}
	// Chance is 1/8 = 0.125. The synthetic species differ in colour and
	// shape, which the random image tower keeps apart; tuning the text tower
	// for 24 steps reaches well above chance (about 0.6-0.9 in practice).
	for _, m := range res.Members {
		if raceEnabled {
			break
		}
		if m.Top1 < 3*res.Chance1 {
			t.Errorf("%s: top-1 %.3f, want at least 3× chance (%.3f)", m.Name, m.Top1, 3*res.Chance1)
		}
		if m.Top5 <= res.Chance5 {
			t.Errorf("%s: top-5 %.3f not above chance %.3f", m.Name, m.Top5, res.Chance5)
		}
	}
	if (!raceEnabled && res.Eval.Top1 < 3*res.Chance1) || res.Eval.Images != res.Val {
		t.Errorf("report: top-1 %.3f on %d images", res.Eval.Top1, res.Eval.Images)
	}
	for _, dir := range []string{res.ReportDir, res.SweepDir} {
		pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
		if len(pngs) < 2 {
			t.Errorf("%s: %d PNGs", dir, len(pngs))
		}
		for _, p := range pngs {
			f, _ := os.Open(p)
			if _, err := png.Decode(f); err != nil {
				t.Errorf("%s: %v", p, err)
			}
			f.Close()
		}
	}
	// Finished members keep final/ and lose their checkpoints.
	for _, m := range res.Members {
		if _, err := os.Stat(filepath.Join(m.Dir, "checkpoints")); !os.IsNotExist(err) {
			t.Errorf("%s: checkpoints not pruned (%v)", m.Name, err)
		}
		if _, err := os.Stat(filepath.Join(m.Dir, "final", "open_clip_model.safetensors")); err != nil {
			t.Errorf("%s: %v", m.Name, err)
		}
	}
	table := res.Table().Markdown()
	t.Logf("demo results (%.1fs):\n%s", res.Seconds, table)
	for _, want := range []string{"untuned", "LiT-tuned warmup-", "chance top-1"} {
		if !strings.Contains(table, want) {
			t.Errorf("results table lacks %q:\n%s", want, table)
		}
	}
	if !strings.Contains(log.String(), "CLIP's BPE vocabulary (built in)") {
		t.Errorf("the log does not say the captions are tokenized with CLIP's vocabulary")
	}
}

func TestDemoRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no out", func(c *Config) { c.Out = "" }, "output folder"},
		{"one species", func(c *Config) { c.Species = 1 }, "at least 2 species"},
		{"no warm-up", func(c *Config) { c.Warmups = nil }, "no warm-up"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Out = t.TempDir()
			tc.mod(&cfg)
			if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
