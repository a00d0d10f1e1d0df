package littest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/testutil"
)

// BenchCase is one sub-benchmark of BenchLiT.
type BenchCase struct {
	Name   string
	Ctx    int  // the token rows' width (tune --context)
	Trim   bool // run the batch's longest caption, bucketed (else Ctx)
	Graphs bool // CUDA graphs
	Batch  int
	Steps  int // timed steps (after 2 warm-up steps)
}

// BenchShape is what BenchLiT trains: the model, the resident rows and the
// classes (one caption each), and the cases.
type BenchShape struct {
	Model         clip.Config
	Rows, Classes int
	Cases         []BenchCase
}

// PeerShape is issue 11's: the PyTorch peer's LiT step (pytorch_peer.py),
// OpenCLIP's ViT-B text tower (12 layers × 512, 8 heads, QuickGELU,
// vocabulary 49408) projected to the 768-d features of a ViT-L/14 cache;
// 65,536 resident rows, 10,000 classes; batch 4096 at contexts 32 and 77,
// CUDA graphs at 32 (ablation), trimming off at 77 (ablation: the peer's
// work), and batch 16384 (must fit).
func PeerShape(tb testing.TB) BenchShape {
	cfg, err := clip.LoadConfig("ViT-B-32")
	if err != nil {
		tb.Fatal(err)
	}
	cfg.EmbedDim, cfg.QuickGELU = 768, true
	return BenchShape{Model: cfg, Rows: 65536, Classes: 10000, Cases: []BenchCase{
		{"ctx32", 32, true, false, 4096, 12},
		{"ctx32-graphs", 32, true, true, 4096, 12},
		{"ctx77", 77, true, false, 4096, 12},
		{"ctx77-notrim", 77, false, false, 4096, 5},
		{"ctx77-bs16384", 77, true, false, 16384, 4},
	}}
}

// SmallShape is PeerShape's cases at a size the emulator runs in seconds
// (2 layers × 64, batch 16): it checks the benchmark's own logic.
func SmallShape() BenchShape {
	cfg := clip.Config{EmbedDim: 48, QuickGELU: true, Text: clip.TextConfig{ContextLength: 77, VocabSize: 49408,
		Width: 64, Heads: 4, Layers: 2, MLPRatio: 4},
		Vision: clip.VisionConfig{ImageSize: 32, PatchSize: 8, Width: 64, Layers: 1, HeadWidth: 16, MLPRatio: 4}}
	return BenchShape{Model: cfg, Rows: 128, Classes: 50, Cases: []BenchCase{
		{"ctx32", 32, true, false, 16, 1},
		{"ctx32-graphs", 32, true, true, 16, 1},
		{"ctx77-notrim", 77, false, false, 16, 1},
	}}
}

// INatCaptions are K token rows of width T made of the 200 real iNat2021
// captions of testdata/tokenizer (11 to 24 tokens, 16.7 on average),
// caption k the (k mod 200)-th, with their pooled (end-of-text) positions.
func INatCaptions(tb testing.TB, K, T int) (ids []int32, pool []int) {
	raw, err := os.ReadFile(testutil.Testdata(tb, "tokenizer/clip_bpe_reference.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var ref struct {
		Sampled []struct {
			IDs []int32 `json:"ids"`
		} `json:"sampled_captions"`
		EOT int32 `json:"eot"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil || len(ref.Sampled) == 0 {
		tb.Fatalf("sampled captions: %v", err)
	}
	ids, pool = make([]int32, K*T), make([]int, K)
	for k := 0; k < K; k++ {
		row := ref.Sampled[k%len(ref.Sampled)].IDs
		for t, id := range row[:min(T, len(row))] {
			ids[k*T+t] = id
			if id == ref.EOT && pool[k] == 0 {
				pool[k] = t
			}
		}
	}
	return ids, pool
}

var (
	benchMu     sync.Mutex
	benchParams = map[string][]cuda.LiTParam{}
)

// BenchLiT measures the LiT step in the backend's precision, one
// sub-benchmark per case: each image's class uniform over the classes,
// dedup encoding the distinct captions, trim running the longest bucketed.
// It reports samples/s from the median step (the host plans the next batch
// while the GPU runs, as tune does), the model FLOP rate of the tokens run,
// the captions encoded per step, the device memory litcache held at its
// peak (resident rows and captions included) and the driver's used memory.
//
// It returns each case's figures (also reported to the harness).
func BenchLiT(b *testing.B, g *cuda.Backend, s BenchShape) map[string]map[string]float64 {
	cfg := s.Model
	N, K, E := s.Rows, s.Classes, cfg.EmbedDim
	benchMu.Lock()
	key := fmt.Sprintf("%+v", cfg) // the harness may call a benchmark more than once
	ps := benchParams[key]
	if ps == nil {
		text := clip.NewRandomTextTower(backend.NewCPU(), cfg, 1)
		ps = Params(b, text, float32(math.Log(1/0.07)))
		text.Free()
		benchParams[key] = ps
	}
	benchMu.Unlock()
	rng := rand.New(rand.NewPCG(1, 1))
	feat := make([]float32, N*E)
	for i := range feat {
		feat[i] = float32(rng.NormFloat64())
	}
	rows, err := g.NewDeviceRows(N, E, false)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Free()
	if err := rows.UploadF32(0, feat); err != nil {
		b.Fatal(err)
	}
	labels := make([]int32, N)
	for i := range labels {
		labels[i] = int32(rng.IntN(K))
	}
	out := map[string]map[string]float64{}
	for _, c := range s.Cases {
		b.Run(c.Name, func(b *testing.B) { out[c.Name] = benchCase(b, g, cfg, ps, rows, labels, K, c) })
	}
	return out
}

func benchCase(b *testing.B, g *cuda.Backend, cfg clip.Config, ps []cuda.LiTParam, rows *cuda.DeviceRows, labels []int32, K int, c BenchCase) map[string]float64 {
	N := rows.N
	ids, pool := INatCaptions(b, K, c.Ctx)
	caps, err := g.NewDeviceCaptions(ids, K, c.Ctx, pool)
	if err != nil {
		b.Fatal(err)
	}
	defer caps.Free()
	dv := g.Device()
	dv.ResetPeak()
	maxT := caps.T
	if c.Trim {
		maxT = min((caps.Longest()+cuda.TokenBucket-1)/cuda.TokenBucket*cuda.TokenBucket, caps.T)
	}
	lit, err := cuda.NewLiT(g, Model(cfg), ps, cuda.LiTOptions{Batch: c.Batch, MaxTokens: maxT,
		Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.2, Graphs: c.Graphs})
	if err != nil {
		b.Fatalf("batch %d: %v", c.Batch, err)
	}
	defer lit.Free()
	plan := func(step int) cuda.LiTBatch {
		r := rand.New(rand.NewPCG(uint64(step), 7))
		idx, capOf := make([]int32, c.Batch), make([]int32, c.Batch)
		for j := range idx {
			i := r.IntN(N)
			idx[j], capOf[j] = int32(i), labels[i]
		}
		bt := caps.PlanBatch(idx, capOf, true, c.Trim)
		bt.LR = 1e-4
		return bt
	}
	const warm = 2
	var times []float64
	var flop, unique float64
	next := plan(0)
	b.ResetTimer()
	for step := 0; step < warm+c.Steps; step++ {
		bt := next
		t0 := time.Now()
		if err := lit.Launch(rows, caps, bt); err != nil {
			b.Fatalf("step %d: %v", step, err)
		}
		next = plan(step + 1)
		st, err := lit.Wait()
		if err != nil {
			b.Fatalf("step %d: %v", step, err)
		}
		if math.IsNaN(st.Loss) {
			b.Fatalf("step %d: the loss is NaN", step)
		}
		if step >= warm {
			times = append(times, time.Since(t0).Seconds())
			flop += StepFLOP(cfg, len(bt.Caps), bt.T, c.Batch)
			unique += float64(len(bt.Caps))
		}
	}
	b.StopTimer()
	sort.Float64s(times)
	med := times[len(times)/2]
	n := float64(len(times))
	free, total, _ := dv.MemInfo()
	m := map[string]float64{
		"samples/s":       float64(c.Batch) / med,
		"step-ms":         1e3 * med,
		"TFLOP/s":         flop / n / med / 1e12,
		"captions":        unique / n,
		"peak-GiB":        float64(dv.MemStats().Peak) / (1 << 30),
		"device-used-GiB": float64(total-free) / (1 << 30),
		"graphs":          float64(lit.Graphs()),
	}
	for unit, v := range m {
		b.ReportMetric(v, unit)
	}
	return m
}

// StepFLOP counts a step's arithmetic, forward and backward (×3): the
// tower's GEMMs over the U·T tokens run (qkv, out, c_fc, c_proj: 2·(4W² +
// 2WF) per token and layer), causal attention's two products (4·T·W per
// token and layer, the whole square as computed), the projection of the U
// pooled rows, and the B×B loss's products.
func StepFLOP(cfg clip.Config, U, T, B int) float64 {
	t := cfg.Text
	W, F, L, E := float64(t.Width), float64(t.Hidden()), float64(t.Layers), float64(cfg.EmbedDim)
	tokens, b := float64(U*T), float64(B)
	return 3 * (tokens*L*(2*(4*W*W+2*W*F)+4*float64(T)*W) + 2*float64(U)*W*E + 2*b*b*E)
}
