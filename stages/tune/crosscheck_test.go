package tune

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/stages/evaluate"
)

// TestEpochZeroShotMatchesEvaluate cross-checks tune's per-epoch zero-shot
// figures against the evaluation stage, which scores the same val cache from
// files by its own code path (classes.json → prompts → tokenizer → text
// tower from the checkpoint folder → evaluate.Score): after every epoch,
// top-1 and top-5 in metrics.jsonl must equal evaluate.Run's on that epoch's
// checkpoint exactly. Range checks and resume comparisons cannot see a
// fault that both a run and its resumption share (say, val images scored
// against their neighbour's label); an independent scorer can.
//
// Ten classes, so that top-5 is not trivially 1, and noisy clusters, so that
// the figures move between epochs instead of sitting at 1. Two epochs keep
// it short under -race, which is how CI runs it.
func TestEpochZeroShotMatchesEvaluate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"class captions", func(*Config) {}},
		{"image head, cached captions", func(c *Config) { c.ImageHead, c.Captions = true, CaptionsFromCache }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newTestWorldSized(t, 10, 60, 40)
			cfg := w.config(filepath.Join(w.dir, "run"))
			cfg.Epochs, cfg.LR, cfg.Warmup = 2, 3e-3, 2
			tc.edit(&cfg)
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, epochs, err := ReadMetrics(res.Metrics)
			if err != nil {
				t.Fatal(err)
			}
			if len(epochs) != cfg.Epochs {
				t.Fatalf("%d epoch lines, want %d", len(epochs), cfg.Epochs)
			}
			for _, e := range epochs {
				if e.Top1 == nil || e.Top5 == nil {
					t.Fatalf("epoch %d: no zero-shot figures: %+v", e.Epoch, e)
				}
				ecfg := evaluate.DefaultConfig()
				ecfg.Cache, ecfg.Classes, ecfg.Vocab = w.val, w.classes, w.vocab
				ecfg.Weights = filepath.Join(cfg.Out, checkpointsDir, checkpointName(e.Step))
				ecfg.Quiet = true
				ev, err := evaluate.Run(context.Background(), ecfg)
				if err != nil {
					t.Fatalf("epoch %d: evaluate: %v", e.Epoch, err)
				}
				if ev.Images != w.valMem.Len() {
					t.Fatalf("epoch %d: evaluate scored %d images, the val cache holds %d", e.Epoch, ev.Images, w.valMem.Len())
				}
				t.Logf("epoch %d (step %d): tune top-1 %.4f top-5 %.4f, evaluate %.4f %.4f", e.Epoch, e.Step, *e.Top1, *e.Top5, ev.Top1, ev.Top5)
				if *e.Top1 != ev.Top1 || *e.Top5 != ev.Top5 {
					t.Errorf("epoch %d: tune's zero-shot top-1 %s top-5 %s, evaluate.Run on %s: %s and %s",
						e.Epoch, pct(*e.Top1), pct(*e.Top5), ecfg.Weights, pct(ev.Top1), pct(ev.Top5))
				}
			}
			// The check means something only if the figures are neither
			// trivial nor all alike.
			if last := epochs[len(epochs)-1]; *last.Top1 <= 0.1 || *last.Top5 >= 1 {
				t.Errorf("last epoch top-1 %.3f, top-5 %.3f: want top-1 above chance (0.1) and top-5 below 1, or the cross-check is idle", *last.Top1, *last.Top5)
			}
		})
	}
}

func pct(x float64) string { return fmt.Sprintf("%.2f%%", 100*x) }
