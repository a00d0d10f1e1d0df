// Package demo runs litcache's whole flow on an embedded default, from
// nothing but the repository: a synthetic mini-iNat (internal/inat/synth) →
// captioned webdataset shards (stages/caption) → an embedding cache from a
// small random-init ViT (stages/extract) → a warm-up sweep of LiT tuning runs
// (stages/sweep over stages/tune) → a zero-shot evaluation report
// (stages/evaluate). It is the first thing a new user runs.
package demo

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/inat/synth"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/report"
	"github.com/litcache/litcache/internal/tokenizer"
	"github.com/litcache/litcache/stages/bundle"
	"github.com/litcache/litcache/stages/caption"
	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/stages/extract"
	"github.com/litcache/litcache/stages/sweep"
	"github.com/litcache/litcache/stages/tune"
	"github.com/litcache/litcache/store"
)

// ModelJSON is the demo's CLIP config (OpenCLIP model-config JSON): a small
// ViT whose random weights serve as the locked image tower — on the
// synthetic photos, whose species differ in colours, shapes and textures,
// random patch features already keep the species apart — and a small text
// tower with CLIP's 49,408-token vocabulary, trained from scratch.
//
//go:embed demo_model.json
var ModelJSON []byte

// Config sizes the demo. Every field has a default (DefaultConfig).
type Config struct {
	Out string // output folder

	// The synthetic dataset.
	Species, TrainPerSpecies, ValPerSpecies, ImageSize int
	Seed                                               int64

	// ImageSeed initialises the random image tower.
	ImageSeed int64
	// Views per training image in the cache (view 0 = eval crop, others random crops).
	Views int

	// The sweep: one tuning run per warm-up.
	Warmups   []int
	Epochs    int
	BatchSize int
	LR        float64

	Threads int // parallel image drawing, captioning and decoding (0: all cores)

	// Backend runs the image tower (extract) and the tuning (nil: the
	// float32 CPU backend). The evaluation and the bundle run on the CPU in
	// float32 whatever it is.
	Backend backend.Backend

	Log   io.Writer // progress lines (nil: stderr)
	Quiet bool      // no output at all
}

// DefaultConfig is the demo as `litcache demo` runs it: 24 species, 40 train
// and 10 val images each, three warm-ups (its time is measured in the README).
func DefaultConfig() Config {
	return Config{Out: "demo-out", Species: 24, TrainPerSpecies: 40, ValPerSpecies: 10, ImageSize: 64, Seed: 1,
		ImageSeed: 7, Views: 1, Warmups: []int{5, 40, 120}, Epochs: 10, BatchSize: 64, LR: 3e-3}
}

// StageTime is how long one stage took.
type StageTime struct {
	Stage   string  `json:"stage"`
	Seconds float64 `json:"seconds"`
}

// MemberResult is one sweep member's final zero-shot accuracy.
type MemberResult struct {
	Name   string  `json:"name"`
	Warmup int     `json:"warmup"`
	Top1   float64 `json:"top1"`
	Top5   float64 `json:"top5"`
	Loss   float64 `json:"loss"`
	Dir    string  `json:"dir"`
}

// Result is what the demo measured and where it wrote it.
type Result struct {
	Out       string `json:"out"`
	Classes   int    `json:"classes"`
	Train     int    `json:"train_images"`
	Val       int    `json:"val_images"`
	Baseline  MemberResult
	Members   []MemberResult `json:"members"`
	Chance1   float64        `json:"chance_top1"`
	Chance5   float64        `json:"chance_top5"`
	Best      string         `json:"best_member"`
	Eval      evaluate.Result
	Sweep     *sweep.Summary
	Stages    []StageTime `json:"stages"`
	Seconds   float64     `json:"seconds"`
	ReportDir string      `json:"report_dir"`
	SweepDir  string      `json:"sweep_dir"`
	// Bundle is the classifier bundle of the best run (for predict and serve).
	Bundle string `json:"bundle"`
}

// Paths inside the demo folder.
const (
	dataDir   = "data"
	shardsDir = "shards"
	cacheDir  = "cache"
	sweepDir  = "sweep"
	reportDir = "report"
	ModelFile = "demo_model.json"
	// BundleFile is the best run's classifier bundle.
	BundleFile = "demo.bundle.safetensors"
)

// Run runs the demo into cfg.Out (replacing an earlier demo there).
func Run(ctx context.Context, cfg Config) (Result, error) {
	start := time.Now()
	res := Result{Out: cfg.Out}
	if cfg.Out == "" {
		return res, fmt.Errorf("demo: no output folder")
	}
	if cfg.Species < 2 || cfg.TrainPerSpecies < 1 || cfg.ValPerSpecies < 1 {
		return res, fmt.Errorf("demo: need at least 2 species, 1 train and 1 val image each (got %d, %d, %d)", cfg.Species, cfg.TrainPerSpecies, cfg.ValPerSpecies)
	}
	if len(cfg.Warmups) == 0 {
		return res, fmt.Errorf("demo: no warm-up to sweep")
	}
	logw := cfg.Log
	if logw == nil {
		logw = os.Stderr
	}
	if cfg.Quiet {
		logw = io.Discard
	}
	pbar := progress.Options{W: logw, Quiet: cfg.Quiet}
	// A previous demo's folders would be resumed by each stage; the demo starts clean.
	for _, d := range []string{dataDir, shardsDir, cacheDir, sweepDir, reportDir, BundleFile} {
		if err := os.RemoveAll(filepath.Join(cfg.Out, d)); err != nil {
			return res, fmt.Errorf("demo: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return res, fmt.Errorf("demo: %w", err)
	}
	stage := func(name string, t0 time.Time) {
		s := time.Since(t0).Seconds()
		res.Stages = append(res.Stages, StageTime{name, s})
		fmt.Fprintf(logw, "demo: %s done in %.1fs\n", name, s)
	}

	// ---- 1. synthetic mini-iNat ----
	t0 := time.Now()
	data := filepath.Join(cfg.Out, dataDir)
	fmt.Fprintf(logw, "demo: 1/6 synthetic mini-iNat: %d species × (%d train + %d val) images → %s\n",
		cfg.Species, cfg.TrainPerSpecies, cfg.ValPerSpecies, data)
	if err := synth.Generate(data, synth.Options{Species: cfg.Species, TrainPerSpecies: cfg.TrainPerSpecies,
		ValPerSpecies: cfg.ValPerSpecies, ImageSize: cfg.ImageSize, Seed: cfg.Seed, Threads: cfg.Threads}); err != nil {
		return res, fmt.Errorf("demo: synthetic data: %w", err)
	}
	stage("synthetic data", t0)
	if err := ctx.Err(); err != nil {
		return res, err
	}

	// ---- 2. captions → webdataset shards ----
	t0 = time.Now()
	fmt.Fprintf(logw, "demo: 2/6 caption: iNat json → captioned webdataset shards\n")
	shards := map[string][]string{}
	var classesPath string
	for _, split := range []string{"train", "val"} {
		cc := caption.DefaultConfig()
		cc.JSON = filepath.Join(data, split+".json")
		cc.Images = data
		cc.Out = filepath.Join(cfg.Out, shardsDir, split)
		cc.PerShard = 256
		cc.Threads = cfg.Threads
		cc.Progress = pbar
		cc.Log = logw
		if _, err := caption.Run(ctx, cc); err != nil {
			return res, fmt.Errorf("demo: caption %s: %w", split, err)
		}
		m, _ := filepath.Glob(filepath.Join(cc.Out, "*.tar"))
		sort.Strings(m)
		if len(m) == 0 {
			return res, fmt.Errorf("demo: caption %s wrote no shard", split)
		}
		shards[split] = m
		if split == "train" {
			classesPath = filepath.Join(cc.Out, "classes.json")
		}
	}
	classes, err := inat.LoadClasses(classesPath)
	if err != nil {
		return res, fmt.Errorf("demo: %w", err)
	}
	res.Classes = len(classes)
	res.Chance1 = 1 / float64(len(classes))
	res.Chance5 = float64(min(5, len(classes))) / float64(len(classes))
	stage("caption", t0)

	// ---- 3. tokenizer and model config ----
	t0 = time.Now()
	tok, err := tokenizer.CLIP()
	if err != nil {
		return res, fmt.Errorf("demo: %w", err)
	}
	model := filepath.Join(cfg.Out, ModelFile)
	if err := os.WriteFile(model, ModelJSON, 0o644); err != nil {
		return res, fmt.Errorf("demo: %w", err)
	}
	mcfg, err := clip.LoadConfig(model)
	if err != nil {
		return res, fmt.Errorf("demo: embedded model config: %w", err)
	}
	longest := 0
	for _, c := range classes {
		longest = max(longest, len(tok.Encode(c.Caption))+2) // with start and end of text
	}
	// A caption cut by the context would lose its species name, the part
	// that tells classes apart.
	if longest > mcfg.Text.ContextLength {
		return res, fmt.Errorf("demo: a caption takes %d tokens, more than the text tower's context of %d", longest, mcfg.Text.ContextLength)
	}
	fmt.Fprintf(logw, "demo: 3/6 tokenizer: CLIP's BPE vocabulary (built in); the longest caption takes %d of the %d context tokens\n",
		longest, mcfg.Text.ContextLength)
	stage("tokenizer", t0)

	// ---- 4. extract: random-init image tower once over every image ----
	t0 = time.Now()
	cache := filepath.Join(cfg.Out, cacheDir)
	fmt.Fprintf(logw, "demo: 4/6 extract: random-init ViT (%d px, patch %d, width %d, %d layers, seed %d) → cache %s\n",
		mcfg.Vision.ImageSize, mcfg.Vision.PatchSize, mcfg.Vision.Width, mcfg.Vision.Layers, cfg.ImageSeed, cache)
	for _, split := range []string{"train", "val"} {
		ec := extract.DefaultConfig()
		ec.Shards = shards[split]
		ec.ModelConfig = model
		ec.Weights = ""
		ec.Seed = cfg.ImageSeed
		ec.Cache = cache
		ec.Split = split
		ec.Views = cfg.Views
		ec.DType = store.Float32
		ec.BatchSize = 64
		ec.Threads = cfg.Threads
		ec.Backend = cfg.Backend
		ec.Progress = pbar
		ec.Log = logw
		if _, err := extract.Run(ctx, ec); err != nil {
			return res, fmt.Errorf("demo: extract %s: %w", split, err)
		}
	}
	if r, err := store.Open(cache, store.ReadOptions{}); err == nil {
		for _, p := range r.Split("train") {
			res.Train += p.N
		}
		for _, p := range r.Split("val") {
			res.Val += p.N
		}
		r.Close()
	}
	if cfg.Views > 1 {
		res.Train /= cfg.Views
		res.Val /= cfg.Views
	}
	stage("extract", t0)

	// ---- 5. sweep over warm-ups ----
	t0 = time.Now()
	base := tune.DefaultConfig()
	base.Cache, base.Split = cache, "train"
	base.ValCache, base.ValSplit = cache, "val"
	base.Classes, base.Model = classesPath, model
	base.Epochs, base.BatchSize, base.LR = cfg.Epochs, cfg.BatchSize, cfg.LR
	base.Seed = uint64(cfg.Seed)
	base.Backend, base.Log, base.Quiet = cfg.Backend, logw, cfg.Quiet
	sw := sweep.Config{Base: base, Grid: sweep.Grid{Warmup: cfg.Warmups}, Out: filepath.Join(cfg.Out, sweepDir),
		Member: -1, PruneCheckpoints: true, Log: logw, Quiet: cfg.Quiet}
	res.SweepDir = sw.Out
	fmt.Fprintf(logw, "demo: 5/6 sweep: LiT-tune the text tower against the cache, warm-up %v steps, %d epochs of batch %d\n",
		cfg.Warmups, cfg.Epochs, cfg.BatchSize)
	_, sum, err := sweep.Run(ctx, sw)
	if err != nil {
		return res, fmt.Errorf("demo: %w", err)
	}
	res.Sweep = sum
	best := -1
	// The summary reads every member's metrics, so members a rerun found
	// finished count as well as those it ran.
	for _, row := range sum.Rows {
		m := row.Member
		mr := MemberResult{Name: m.Name, Warmup: m.Warmup, Top1: row.Top1, Top5: row.Top5,
			Loss: row.Loss, Dir: filepath.Join(sw.Out, m.Name)}
		res.Members = append(res.Members, mr)
		if best < 0 || mr.Top1 > res.Members[best].Top1 {
			best = len(res.Members) - 1
		}
	}
	res.Best = res.Members[best].Name
	stage("sweep", t0)

	// ---- 6. zero-shot evaluation report of the best member, and the untuned baseline ----
	t0 = time.Now()
	be := backend.NewCPU() // float32, as eval and bundle use on a GPU too; the demo's val split is small
	untuned := clip.NewRandomTextTower(be, mcfg, int64(cfg.Seed))
	img, labels, err := valEmbeddings(cache)
	if err != nil {
		return res, err
	}
	sc, err := evaluate.ZeroShot(be, untuned, tok, classes, evaluate.CaptionTemplates, mcfg.Text.ContextLength, img, labels, 5)
	untuned.Free()
	if err != nil {
		return res, fmt.Errorf("demo: baseline: %w", err)
	}
	res.Baseline = MemberResult{Name: "untuned (random-init text tower)", Top1: sc.Top1Acc(), Top5: sc.Top5Acc()}

	ec := evaluate.DefaultConfig()
	ec.Cache, ec.Split, ec.Classes = cache, "val", classesPath
	ec.Weights = res.Members[best].Dir
	ec.Out = filepath.Join(cfg.Out, reportDir)
	ec.Title = fmt.Sprintf("litcache demo: zero-shot evaluation of %s (best warm-up)", res.Best)
	ec.Backend, ec.Log, ec.Quiet = be, logw, cfg.Quiet
	fmt.Fprintf(logw, "demo: 6/6 eval: zero-shot report for %s → %s\n", res.Best, ec.Out)
	if res.Eval, err = evaluate.Run(ctx, ec); err != nil {
		return res, fmt.Errorf("demo: %w", err)
	}
	res.ReportDir = ec.Out
	stage("eval", t0)

	// ---- the best run's classifier bundle, for predict and serve ----
	t0 = time.Now()
	bc := bundle.DefaultConfig()
	// No --model/--weights: the image tower is the run's own (final/ is a
	// full model), checked against the fingerprint it was tuned with.
	bc.Run, bc.Classes, bc.Out = res.Members[best].Dir, classesPath, filepath.Join(cfg.Out, BundleFile)
	bc.Backend, bc.Log, bc.Quiet = be, logw, cfg.Quiet
	if _, err := bundle.Run(ctx, bc); err != nil {
		return res, fmt.Errorf("demo: %w", err)
	}
	res.Bundle = bc.Out
	stage("bundle", t0)
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// valEmbeddings reads view 0 of the val split, L2-normalised, with labels.
func valEmbeddings(cache string) ([]float32, []int32, error) {
	r, err := store.Open(cache, store.ReadOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("demo: %w", err)
	}
	defer r.Close()
	D := r.Manifest().Dim
	var img []float32
	var labels []int32
	buf := make([]float32, D)
	for _, p := range r.Split("val") {
		views, lab := p.Views(), p.Labels()
		for i := 0; i < p.N; i++ {
			if views[i] != 0 {
				continue
			}
			img = append(img, p.Row(i, buf)...)
			labels = append(labels, lab[i])
		}
	}
	evaluate.NormalizeRows(img, len(labels), D)
	return img, labels, nil
}

// Table is the demo's results table: each text tower's zero-shot top-1 and
// top-5 on the val split with the chance level beside them.
func (r Result) Table() report.Table {
	t := report.Table{Header: []string{"text tower", "warm-up", "top-1", "top-5", "chance top-1", "chance top-5"},
		Right: []bool{false, true, true, true, true, true}}
	row := func(name, warm string, m MemberResult) {
		t.AddRow(name, warm, fmt.Sprintf("%.3f", m.Top1), fmt.Sprintf("%.3f", m.Top5),
			fmt.Sprintf("%.3f", r.Chance1), fmt.Sprintf("%.3f", r.Chance5))
	}
	row(r.Baseline.Name, "", r.Baseline)
	for _, m := range r.Members {
		name := "LiT-tuned " + m.Name
		if m.Name == r.Best {
			name += " (best)"
		}
		row(name, fmt.Sprint(m.Warmup), m)
	}
	return t
}
