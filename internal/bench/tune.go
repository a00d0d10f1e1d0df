package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/optim"
	"github.com/litcache/litcache/stages/tune"
)

// Tune times CPU LiT steps (text tower forward + backward, InfoNCE against
// cached 256-d image features, AdamW over every text parameter) for a
// 4-layer × 256-wide text tower (4 heads, context 77, CLIP's vocabulary)
// at batch 256, with caption dedup and context trim on against the plain
// computation (every row encoded, full context), measured in the same run.
//
// Two caption distributions:
//   - inat-10k: labels drawn from 10,000 classes with iNat2021-train-like
//     counts (152 to 300 images per class, mean ≈ 270: 2.69M/10k); few
//     captions repeat in a batch of 256, so trimming does the work;
//   - dup-100: a 100-class subset, uniform; a batch repeats captions often.
//
// Captions are synthetic token rows of 10 to 27 tokens with start- and
// end-of-text (iNat captions need at most 27); the cost does not depend on
// the ids.
var Tune = Bench{
	Name: "tune",
	Help: "CPU LiT samples/s, 4×256 text tower, batch 256: dedup+trim vs plain, on iNat-like and duplicate-heavy labels",
	Run:  runTuneBench,
}

const (
	tuneBatch  = 256
	tuneCtx    = 77
	tuneTimed  = 2 // timed steps per configuration, after one warm-up step
	tuneVocab  = 49408
	tuneEmbed  = 256
	tuneLayers = 4
	tuneWidth  = 256
)

// tuneSetting is one label distribution.
type tuneSetting struct {
	name   string
	weight []float64 // per class, ∝ images
}

func inatLikeCounts(k int) []float64 {
	// 60% of classes at the cap of 300 images, the rest spread 152..300:
	// mean 0.6·300 + 0.4·226 ≈ 270, iNat2021 train's 2,686,843 / 10,000.
	w := make([]float64, k)
	capped := k * 6 / 10
	for i := range w {
		if i < capped {
			w[i] = 300
		} else {
			w[i] = 152 + 148*float64(i-capped)/float64(k-capped)
		}
	}
	return w
}

func uniformCounts(k int) []float64 {
	w := make([]float64, k)
	for i := range w {
		w[i] = 1
	}
	return w
}

// tuneBatches draws n batches of labels by weight and their caption rows.
type tuneData struct {
	img  [][]float32 // per batch (B,E), normalised
	ids  [][]int32   // per batch (B,T)
	uniq float64     // mean distinct captions per batch
	ctx  float64     // mean trimmed context
}

func makeTuneData(s tuneSetting, n int, seed uint64) tuneData {
	rng := rand.New(rand.NewPCG(seed, 0x7e))
	K := len(s.weight)
	// Per-class caption: length 10..27 including start and end of text.
	caps := make([][]int32, K)
	for k := range caps {
		L := 10 + rng.IntN(18)
		row := make([]int32, tuneCtx)
		row[0] = 49406
		for t := 1; t < L-1; t++ {
			row[t] = int32(1 + rng.IntN(49000))
		}
		row[L-1] = 49407
		caps[k] = row
	}
	cum := make([]float64, K)
	sum := 0.0
	for k, w := range s.weight {
		sum += w
		cum[k] = sum
	}
	var d tuneData
	for b := 0; b < n; b++ {
		img := make([]float32, tuneBatch*tuneEmbed)
		for i := range img {
			img[i] = float32(rng.NormFloat64())
		}
		ids := make([]int32, tuneBatch*tuneCtx)
		seen := map[int]bool{}
		maxLen := 0
		for r := 0; r < tuneBatch; r++ {
			u := rng.Float64() * sum
			lo, hi := 0, K-1
			for lo < hi {
				m := (lo + hi) / 2
				if cum[m] < u {
					lo = m + 1
				} else {
					hi = m
				}
			}
			seen[lo] = true
			copy(ids[r*tuneCtx:(r+1)*tuneCtx], caps[lo])
			for t := tuneCtx - 1; t >= 0; t-- {
				if caps[lo][t] != 0 {
					maxLen = max(maxLen, t+1)
					break
				}
			}
		}
		d.img = append(d.img, img)
		d.ids = append(d.ids, ids)
		d.uniq += float64(len(seen)) / float64(n)
		d.ctx += float64(maxLen) / float64(n)
	}
	return d
}

func tuneModel() (clip.Config, error) {
	cfg, ok := clip.Builtin("ViT-B-32")
	if !ok {
		return cfg, fmt.Errorf("bench tune: no built-in ViT-B-32 config")
	}
	cfg.EmbedDim = tuneEmbed
	cfg.QuickGELU = true // OpenAI CLIP's activation, as in the towers LiT-on-iNat starts from
	cfg.Text = clip.TextConfig{ContextLength: tuneCtx, VocabSize: tuneVocab, Width: tuneWidth, Heads: 4, Layers: tuneLayers, MLPRatio: 4}
	return cfg, cfg.Validate()
}

// samplesPerSecond runs one warm-up step and tuneTimed timed steps.
func samplesPerSecond(ctx context.Context, be backend.Backend, cfg clip.Config, d tuneData, o tune.TrainerOptions) (float64, error) {
	text := clip.NewRandomTextTower(be, cfg, 1)
	defer text.Free()
	sched := optim.Schedule{Kind: optim.Cosine, BaseLR: 1e-4, Warmup: 10, Steps: 1000}
	tr, err := tune.NewTrainer(be, text, nil, tune.InitLogitScale, optim.DefaultOptions(), sched, o)
	if err != nil {
		return 0, err
	}
	defer tr.Optimizer().Free()
	tr.Step(d.img[0], d.ids[0], tuneBatch, tuneCtx)
	t := time.Now()
	for i := 1; i <= tuneTimed; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		tr.Step(d.img[i], d.ids[i], tuneBatch, tuneCtx)
	}
	return float64(tuneTimed*tuneBatch) / time.Since(t).Seconds(), nil
}

func runTuneBench(ctx context.Context, emit func(Figure)) error {
	cfg, err := tuneModel()
	if err != nil {
		return err
	}
	be := backend.NewCPU()
	settings := []tuneSetting{
		{"inat-10k", inatLikeCounts(10_000)},
		{"dup-100", uniformCounts(100)},
	}
	for si, s := range settings {
		d := makeTuneData(s, tuneTimed+1, uint64(si+1))
		plain, err := samplesPerSecond(ctx, be, cfg, d, tune.TrainerOptions{})
		if err != nil {
			return err
		}
		trim, err := samplesPerSecond(ctx, be, cfg, d, tune.TrainerOptions{Trim: true})
		if err != nil {
			return err
		}
		both, err := samplesPerSecond(ctx, be, cfg, d, tune.TrainerOptions{Dedup: true, Trim: true})
		if err != nil {
			return err
		}
		note := fmt.Sprintf("%s; mean %.0f distinct captions of %d, context %.0f of %d", be.Name(), d.uniq, tuneBatch, d.ctx, tuneCtx)
		prefix := fmt.Sprintf("tune/4x256/b%d/%s/", tuneBatch, s.name)
		emit(Figure{Name: prefix + "dedup+trim", Value: both, Unit: "samples/s",
			RefName: "plain (every row, context 77)", Ref: plain, HigherIsBetter: true, Note: note})
		emit(Figure{Name: prefix + "dedup", Value: both, Unit: "samples/s",
			RefName: "trim only (dedup off)", Ref: trim, HigherIsBetter: true})
	}
	return nil
}
