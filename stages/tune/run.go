package tune

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/atomicfile"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/tokenizer"
	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/store"
)

// Result summarises a run.
type Result struct {
	Out           string // run folder
	Final         string // OUT/final (the full model, or the text tower alone), "" when the run stopped early
	FullModel     bool   // final/ holds the image tower too
	Checkpoint    string // the last checkpoint written
	Metrics       string // OUT/metrics.jsonl
	Steps         int    // steps done in total (resumed ones included)
	StepsPerEpoch int
	Epochs        int     // epochs completed
	Stopped       bool    // ended by StopAfter or cancellation before the last epoch
	ResumedFrom   int     // steps of the checkpoint resumed from (0 for a fresh run)
	Loss          float64 // mean training loss of the last completed epoch (or of the steps run)
	HasVal        bool
	Top1, Top5    float64 // zero-shot accuracy on the val cache after the last epoch, in [0,1]
	ValLoss       float64
	Classes       int     // classes of the zero-shot classifier (chance top-1 is 1/Classes)
	LogitScale    float64 // final log temperature
	SamplesPerS   float64 // training throughput of this invocation
	// FirstStep is the time from the start of Run (or RunInputs) to the end
	// of this invocation's first step: start-up, mostly opening the cache.
	FirstStep time.Duration
}

// Run trains the text tower of cfg.Model against the cache and writes
// the run folder (see the package comment).
func Run(ctx context.Context, cfg Config) (Result, error) {
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	mcfg, err := clip.LoadConfig(cfg.Model)
	if err != nil {
		return Result{}, fmt.Errorf("tune: --model: %w", err)
	}
	T := cfg.ContextLen
	if T == 0 {
		T = mcfg.Text.ContextLength
	}
	if T > mcfg.Text.ContextLength {
		return Result{}, fmt.Errorf("tune: context %d exceeds the text model's context_length %d", T, mcfg.Text.ContextLength)
	}
	tok, err := tokenizer.Open(cfg.Vocab)
	if err != nil {
		return Result{}, fmt.Errorf("tune: --vocab: %w", err)
	}
	if tokenizer.EOT >= mcfg.Text.VocabSize {
		return Result{}, fmt.Errorf("tune: the text model's vocabulary (%d) is smaller than the CLIP tokenizer's (%d)", mcfg.Text.VocabSize, tokenizer.EOT+1)
	}
	classes, err := inat.LoadClasses(cfg.Classes)
	if err != nil {
		return Result{}, fmt.Errorf("tune: --classes: %w", err)
	}
	train, err := OpenStoreSource(cfg.Cache, cfg.Split, store.SplitTrain, cfg.ExpectFingerprint)
	if err != nil {
		return Result{}, err
	}
	defer train.Close()
	// Rows are read in random order (within a window of parts for block
	// shuffling, which prefetches the window): each reads its own pages only.
	if err := train.Advise(store.AdviseRandom); err != nil {
		return Result{}, fmt.Errorf("tune: %w", err)
	}
	opened := time.Since(start)
	var val *StoreSource
	if cfg.ValCache != "" {
		if val, err = OpenStoreSource(cfg.ValCache, cfg.ValSplit, store.SplitVal, cfg.ExpectFingerprint); err != nil {
			return Result{}, err
		}
		defer val.Close()
		if vf, tf := val.Manifest().Fingerprint, train.Manifest().Fingerprint; vf != tf {
			// The text tower learns the training cache's embedding space;
			// scored on another tower's, its zero-shot figures mean nothing.
			return Result{}, fmt.Errorf("tune: val cache %s was made by image tower %s, training cache %s by %s: give the val cache of the same tower", cfg.ValCache, vf, cfg.Cache, tf)
		}
		if val.Dim() != train.Dim() {
			return Result{}, fmt.Errorf("tune: val cache %s has dim %d, training cache %s has %d", cfg.ValCache, val.Dim(), cfg.Cache, train.Dim())
		}
	}

	// The image tower is found (and its weights checked) before training,
	// so that a missing file stops the run now rather than after its last epoch.
	var tower *ImageTower
	fitted, _, err := FitTextModel(cfg, mcfg, train.Dim()) // refused now, not after the captions; the run logs the note
	if err != nil {
		return Result{}, err
	}
	if !cfg.TextOnly && !cfg.ImageHead {
		t, err := FindImageTower(cfg.Cache)
		switch {
		case errors.Is(err, ErrNotCLIP):
			fmt.Fprintf(cfgLog(cfg), "tune: final/ holds the text tower alone: %v, which an OpenCLIP model cannot hold\n", err)
		case err != nil:
			return Result{}, fmt.Errorf("%w; final/ holds the full model with it: restore it or pass --text-only for the text tower alone", err)
		default:
			if _, err := t.FullConfig(fitted); err != nil {
				return Result{}, err
			}
			tower = &t
		}
	} else if cfg.ImageHead && !cfg.TextOnly {
		fmt.Fprintf(cfgLog(cfg), "tune: --image-head: final/ holds the text tower and the head beside it (an OpenCLIP model has no place for a head)\n")
	}

	var vs Source
	if val != nil {
		vs = val
	}
	in, err := BuildInputs(cfg, mcfg, T, tok, classes, train, vs)
	if err != nil {
		return Result{}, err
	}
	in.ImageTower = tower
	return runInputs(ctx, cfg, in, start, opened)
}

// cfgLog is where cfg's log lines go.
func cfgLog(cfg Config) io.Writer {
	switch {
	case cfg.Quiet:
		return io.Discard
	case cfg.Log != nil:
		return cfg.Log
	}
	return os.Stderr
}

// BuildInputs tokenises the captions (each class's, and each image's by
// cfg.Captions) and ties them to the sources; val may be nil.
func BuildInputs(cfg Config, mcfg clip.Config, T int, tok *tokenizer.Tokenizer, classes []inat.Class, train, val Source) (Inputs, error) {
	var err error
	tokenize := func(texts []string, T int) []int32 { return tok.TokenizeBatch(texts, T) }
	captions := make([]string, len(classes))
	for k, c := range classes {
		captions[k] = c.Caption
	}
	classTokens := tokenize(captions, T)
	in := Inputs{Model: mcfg, Context: T, Train: train, Classes: classes, ClassTokens: classTokens}
	if cfg.Captions == CaptionsFromCache {
		in.TrainCaptions, err = cacheCaptions(train, tokenize, T, "training")
	} else {
		in.TrainCaptions, err = classCaptions(train, classes, classTokens, T, "training")
	}
	if err != nil {
		return in, err
	}
	if val != nil {
		in.Val = val
		if cfg.Captions == CaptionsFromCache {
			in.ValCaptions, err = cacheCaptions(val, tokenize, T, "val")
		} else {
			in.ValCaptions, err = classCaptions(val, classes, classTokens, T, "val")
		}
		if err != nil {
			return in, err
		}
		if len(cfg.EvalTemplates) > 0 {
			in.Classifier = func(text evaluate.TextEncoder) ([]float32, error) {
				return evaluate.ClassEmbeddings(text, tok, classes, cfg.EvalTemplates, T)
			}
		}
	}
	return in, nil
}

// Inputs are what a run trains on once files are read: Run builds them from
// the cache, classes.json and the tokenizer; tests and benchmarks build them
// in memory.
type Inputs struct {
	Model   clip.Config
	Context int // T: token row width
	Train   Source
	// TrainCaptions gives each training image its token row.
	TrainCaptions *CaptionSet
	// Val (optional) is scored each epoch with ValCaptions for the val loss.
	Val         Source
	ValCaptions *CaptionSet
	// Classes and ClassTokens ((K,T), each class's caption) make the zero-shot
	// classifier; Classifier, when set, replaces it (other templates).
	Classes     []inat.Class
	ClassTokens []int32
	Classifier  func(text evaluate.TextEncoder) ([]float32, error)
	// ImageTower, when set, is written with the tuned text tower into
	// final/ as one full model; nil writes the text tower alone.
	ImageTower *ImageTower
}

// NewCaptionSet makes a caption table for in-memory inputs: tokens (K,T) and
// each image's row in it.
func NewCaptionSet(tokens []int32, T int, index []int32) *CaptionSet {
	return &CaptionSet{tokens: tokens, T: T, index: index}
}

// RunInputs is Run over prepared inputs.
func RunInputs(ctx context.Context, cfg Config, in Inputs) (Result, error) {
	return runInputs(ctx, cfg, in, time.Now(), 0)
}

// runInputs is RunInputs for a run that started at start and spent opened
// opening its training cache (for the first step's log line).
func runInputs(ctx context.Context, cfg Config, in Inputs, start time.Time, opened time.Duration) (res Result, err error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	j := &job{cfg: cfg, in: in, be: cfg.backend(), log: cfg.Log, start: start, opened: opened}
	if j.log == nil {
		j.log = os.Stderr
	}
	if cfg.Quiet {
		j.log = io.Discard
	}
	if err := cfg.checkDevice(); err != nil {
		return Result{}, err
	}
	if cfg.cudaBackend() != nil {
		j.be = backend.NewCPU() // the host mirror of the GPU trainer (gpu.go)
	}
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(GCPercent))
	}
	// A device failure inside an op arrives as a panic carrying the op's
	// error (the backend interface has no error returns).
	defer cuda.Recover(&err)
	return j.run(ctx)
}

// GCPercent is the garbage collector's target while a run trains, unless
// $GOGC is set: collect when garbage reaches 10% of the live heap instead of
// Go's default 100%. Nearly all of a run's heap is tensors that live for the
// whole run (weights, moments, the text tower's workspace), and a step leaves
// only small garbage (closures, slices of ids); at GOGC=100 that garbage
// still piles up to the size of the live heap before a collection, which in
// a long run puts RSS at twice the tensors. Tensors hold no pointers, so the
// collector does not scan them and a collection costs little (NOTES.md).
const GCPercent = 10

type job struct {
	cfg Config
	in  Inputs
	be  backend.Backend
	log io.Writer
	tr  *Trainer
	// valImg caches the val features (N,E), normalised, when there is no head.
	valImg []float32
	// given is the text model as --model gives it; in.Model is the one
	// trained, its embed_dim fitted to the cache (FitTextModel).
	given clip.Config
	// start is when the run began, opened the time its cache took to open.
	start  time.Time
	opened time.Duration
	// gpu trains on a CUDA backend (gpu.go); tr is then its host mirror.
	gpu *gpuRun
}

func (j *job) run(ctx context.Context) (res Result, err error) {
	cfg, in := j.cfg, j.in
	N, B, D := in.Train.Len(), cfg.BatchSize, in.Train.Dim()
	E := in.Model.EmbedDim
	if N < B {
		return res, fmt.Errorf("tune: the training cache holds %d images, fewer than one batch of %d", N, B)
	}
	m, note, err := FitTextModel(cfg, in.Model, D) // textdim.go: embed_dim meets the cache's dim
	if err != nil {
		return res, err
	}
	if note != "" {
		fmt.Fprintln(j.log, note)
	}
	j.given, j.in.Model, in.Model, E = in.Model, m, m, m.EmbedDim
	if len(in.TrainCaptions.index) != N {
		return res, fmt.Errorf("tune: %d caption indices for %d training images", len(in.TrainCaptions.index), N)
	}
	spe := N / B // the last partial batch is dropped, as OpenCLIP's loader does
	total := spe * cfg.Epochs
	sched, err := cfg.schedule(total)
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return res, fmt.Errorf("tune: --out: %w", err)
	}

	// ---- model: fresh or from the latest checkpoint ----
	st := TrainerState{Seed: cfg.Seed, StepsPerEpoch: spe}
	var text *clip.TextTower
	var head *ImageHead
	logit := float32(cfg.LogitScale)
	ckpt, err := LatestCheckpoint(cfg.Out)
	if err != nil {
		return res, err
	}
	if ckpt != "" && !cfg.Resume {
		// A fresh run here would mix its checkpoints with the old run's.
		return res, fmt.Errorf("tune: %s already holds a run (latest checkpoint %s): continue it with --resume or choose another --out", cfg.Out, ckpt)
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, "final", modelFile)); err == nil && ckpt == "" {
		return res, fmt.Errorf("tune: %s already holds a finished run (final/): choose another --out", cfg.Out)
	}
	if ckpt != "" {
		if err := checkIdentity(cfg); err != nil {
			return res, err
		}
		if st, err = ReadTrainerState(ckpt); err != nil {
			return res, err
		}
		if st.StepsPerEpoch != spe || st.Seed != cfg.Seed {
			return res, fmt.Errorf("tune: checkpoint %s has %d steps per epoch and seed %d, this run %d and %d", ckpt, st.StepsPerEpoch, st.Seed, spe, cfg.Seed)
		}
		if text, head, err = loadCheckpointModel(j.be, in.Model, ckpt, cfg.ImageHead); err != nil {
			return res, err
		}
		logit = st.LogitScale
		fmt.Fprintf(j.log, "tune: resuming from %s (step %d, epoch %d)\n", ckpt, st.Step, st.Epoch+1)
	} else {
		if cfg.Resume {
			fmt.Fprintf(j.log, "tune: no checkpoint in %s, starting afresh\n", cfg.Out)
		}
		if text, logit, err = j.initText(); err != nil {
			return res, err
		}
		if cfg.ImageHead {
			head = NewImageHead(j.be, D, E, cfg.Seed)
		}
		if err := writeConfig(cfg); err != nil {
			return res, err
		}
	}
	defer text.Free()
	tr, err := NewTrainer(j.be, text, head, logit, cfg.optimOptions(), sched, TrainerOptions{Dedup: cfg.Dedup, Trim: cfg.Trim})
	if err != nil {
		return res, err
	}
	j.tr = tr
	defer tr.Optimizer().Free()
	// The largest step up front: later steps then allocate no tensors, and
	// memory after step 10 is memory after step 1.
	reserveT := in.Context
	if cfg.Trim {
		reserveT = min(in.TrainCaptions.longest(), in.Context)
	}
	if cfg.cudaBackend() == nil { // on the GPU, the host mirror never steps
		tr.Reserve(B, reserveT)
	}
	keep := -1
	if ckpt != "" {
		if err := tr.Optimizer().Load(filepath.Join(ckpt, optimizerFile)); err != nil {
			return res, fmt.Errorf("tune: checkpoint %s: %w", ckpt, err)
		}
		if tr.Optimizer().Steps() != st.Step {
			return res, fmt.Errorf("tune: checkpoint %s: optimizer at step %d, trainer at %d", ckpt, tr.Optimizer().Steps(), st.Step)
		}
		tr.step = st.Step
		keep = st.Step
	}
	if g := cfg.cudaBackend(); g != nil {
		if j.gpu, err = newGPURun(j, g, tr); err != nil {
			return res, err
		}
		defer j.gpu.free()
	}
	res = Result{Out: cfg.Out, Metrics: filepath.Join(cfg.Out, "metrics.jsonl"), StepsPerEpoch: spe,
		ResumedFrom: st.Step, Epochs: st.Epoch, Classes: len(in.Classes), Checkpoint: ckpt}
	mw, err := openMetrics(res.Metrics, keep)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := mw.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	// ---- the loop ----
	bar := progress.New("tune", int64((total-st.Step)*B), progress.Options{Unit: "sample", Quiet: cfg.Quiet})
	defer bar.Finish()
	img := make([]float32, B*D)
	ids := make([]int32, B*in.Context)
	lossSum, lossN := st.EpochLossSum, st.EpochSteps
	runStart, runSteps := time.Now(), 0
	unscored := false // between an epoch's last step and its evaluation
	save := func(epochDone bool) error {
		if err := j.syncHost(); err != nil {
			return err
		}
		s := TrainerState{Step: tr.step, Epoch: tr.step / spe, StepsPerEpoch: spe, Seed: cfg.Seed,
			EpochLossSum: lossSum, EpochSteps: lossN}
		if unscored {
			s.Epoch-- // its steps are done, its evaluation is not: a resume scores it
		}
		if epochDone {
			s.EpochLossSum, s.EpochSteps = 0, 0
		}
		if err := mw.sync(); err != nil {
			return err
		}
		dir, err := saveCheckpoint(cfg.Out, in.Model, tr, s)
		res.Checkpoint = dir
		return err
	}
	finish := func() {
		res.Steps = tr.step
		res.LogitScale = j.logitScale()
		if el := time.Since(runStart).Seconds(); el > 0 {
			res.SamplesPerS = float64(runSteps*B) / el
		}
	}
	for epoch := st.Epoch; epoch < cfg.Epochs; epoch++ {
		plan := j.plan(epoch)
		perm, views := plan.perm, plan.views
		for k := tr.step - epoch*spe; k < spe; k++ {
			if err := ctx.Err(); err != nil {
				if runSteps > 0 {
					if serr := save(false); serr != nil {
						return res, serr
					}
				}
				finish()
				res.Stopped = true
				return res, fmt.Errorf("tune: interrupted at step %d (checkpoint %s): %w", tr.step, res.Checkpoint, err)
			}
			if j.gpu == nil { // the GPU's rows are resident
				plan.prefetch(in.Train, k*B, (k+1)*B)
			}
			t0 := time.Now()
			s, kept, err := j.trainStep(perm, views, k, img, ids)
			if err != nil {
				return res, j.stepFailed(err, kept, save)
			}
			dt := time.Since(t0).Seconds()
			if runSteps == 0 {
				res.FirstStep = time.Since(j.start)
				fmt.Fprintf(j.log, "tune: first step done %.1fs after start (cache opened in %.1fs, step %.1fs)\n",
					res.FirstStep.Seconds(), j.opened.Seconds(), dt)
			}
			runSteps++
			if math.IsNaN(s.Loss) || math.IsInf(s.Loss, 0) {
				return res, fmt.Errorf("tune: loss is %g at step %d (lr %g): training diverged", s.Loss, s.Step, s.LR)
			}
			lossSum += s.Loss
			lossN++
			line := StepLine{Kind: "step", Step: s.Step, Epoch: epoch, Loss: s.Loss, LR: s.LR, LogitScale: s.LogitScale,
				GradNorm: s.GradNorm, Unique: s.Unique, Encoded: s.Encoded, Context: s.T}
			if dt > 0 {
				line.SamplesPerS = float64(B) / dt
			}
			if err := mw.write(line); err != nil {
				return res, err
			}
			bar.Add(int64(B))
			endOfEpoch := k == spe-1
			stop := cfg.StopAfter > 0 && tr.step >= cfg.StopAfter
			if !endOfEpoch && ((cfg.CheckpointEvery > 0 && tr.step%cfg.CheckpointEvery == 0) || stop) {
				if err := save(false); err != nil {
					return res, err
				}
			}
			if stop && !endOfEpoch {
				finish()
				res.Stopped = true
				res.Loss = lossSum / float64(lossN)
				return res, nil
			}
		}
		// ---- epoch end: zero-shot on val, metrics, checkpoint ----
		el := EpochLine{Kind: "epoch", Epoch: epoch + 1, Step: tr.step, Loss: lossSum / float64(lossN)}
		res.Loss = el.Loss
		msg := fmt.Sprintf("tune: epoch %d/%d: step %d, train loss %.4f", epoch+1, cfg.Epochs, tr.step, el.Loss)
		if in.Val != nil {
			unscored = true
			top1, top5, vl, err := j.evalVal()
			if err != nil {
				return res, j.evalFailed(epoch, err, save)
			}
			unscored = false
			// Scoring's shapes do not recur until the next epoch's end.
			backend.Trim(j.be)
			el.Top1, el.Top5, el.ValLoss = &top1, &top5, &vl
			res.HasVal, res.Top1, res.Top5, res.ValLoss = true, top1, top5, vl
			msg += fmt.Sprintf(", val loss %.4f, zero-shot top-1 %.2f%% top-5 %.2f%% (chance %.2f%%)", vl, 100*top1, 100*top5, 100/float64(max(len(in.Classes), 1)))
		}
		if err := mw.write(el); err != nil {
			return res, err
		}
		lossSum, lossN = 0, 0
		if err := save(true); err != nil {
			return res, err
		}
		res.Epochs = epoch + 1
		fmt.Fprintln(j.log, msg)
		if cfg.StopAfter > 0 && tr.step >= cfg.StopAfter && epoch+1 < cfg.Epochs {
			finish()
			res.Stopped = true
			return res, nil
		}
	}
	finish()
	if runSteps == 0 && st.Epoch > 0 {
		// Resumed at the last epoch's end: the figures are in the metrics.
		if _, eps, err := ReadMetrics(res.Metrics); err == nil && len(eps) > 0 {
			e := eps[len(eps)-1]
			res.Loss = e.Loss
			if e.Top1 != nil && e.Top5 != nil && e.ValLoss != nil {
				res.HasVal, res.Top1, res.Top5, res.ValLoss = true, *e.Top1, *e.Top5, *e.ValLoss
			}
		}
	}

	// ---- the tuned model, loadable by OpenCLIP and clip.LoadModel ----
	if err := j.syncHost(); err != nil {
		return res, err
	}
	final := filepath.Join(cfg.Out, "final")
	if err := os.MkdirAll(final, 0o755); err != nil {
		return res, fmt.Errorf("tune: final: %w", err)
	}
	if err := j.saveFinal(final, tr); err != nil {
		return res, err
	}
	if head != nil {
		if err := head.Save(filepath.Join(final, headFile)); err != nil {
			return res, err
		}
	}
	res.Final, res.FullModel = final, in.ImageTower != nil
	return res, nil
}

// saveFinal writes final/: the full model (the locked image tower, read on
// the CPU so a GPU run needs no room for it, and the tuned text tower), or
// the text tower alone when the inputs carry no image tower.
func (j *job) saveFinal(final string, tr *Trainer) error {
	path := filepath.Join(final, modelFile)
	t := j.in.ImageTower
	if t == nil {
		if err := clip.SaveTextTower(path, j.in.Model, tr.Text(), tr.LogitScale()); err != nil {
			return fmt.Errorf("tune: final: %w", err)
		}
		return nil
	}
	full, err := t.FullConfig(j.in.Model)
	if err != nil {
		return err
	}
	vt, err := t.Load(backend.NewCPU())
	if err != nil {
		return err
	}
	defer vt.Free()
	m := &clip.Model{Config: full, Vision: vt, Text: tr.Text(), LogitScale: tr.LogitScale()}
	meta := map[string]string{
		"litcache":                "clip model: locked image tower + LiT-tuned text tower",
		clip.MetaImageFingerprint: t.Fingerprint,
		clip.MetaImageWeights:     t.Weights,
	}
	if err := clip.SaveModelMeta(path, m, clip.OpenCLIP, meta); err != nil {
		return fmt.Errorf("tune: final: %w", err)
	}
	fmt.Fprintf(j.log, "tune: final/ holds the full model: image tower from %s (cache %s), tuned text tower\n", t.Weights, t.Cache)
	return nil
}

// batch fills img (B,D) and ids (B,T) for the images in idx.
func (j *job) batch(idx []int, views []uint8, img []float32, ids []int32) {
	D, T := j.in.Train.Dim(), j.in.Context
	for b, i := range idx {
		v := 0
		if views != nil {
			v = int(views[i])
		}
		j.in.Train.Row(i, v, img[b*D:(b+1)*D])
		copy(ids[b*T:(b+1)*T], j.in.TrainCaptions.row(j.in.TrainCaptions.index[i]))
	}
}

// initText builds the starting text tower: pretrained weights (OpenCLIP or
// HF names), a random init from random:SEED, or one from the run's seed, and
// the starting log temperature.
func (j *job) initText() (*clip.TextTower, float32, error) {
	cfg := j.cfg
	logit := float32(cfg.LogitScale)
	seed, random, err := clip.ParseRandomWeights(cfg.Weights)
	if err != nil {
		return nil, 0, fmt.Errorf("tune: --weights: %w", err)
	}
	if cfg.Weights == "" || cfg.Weights == RandomInit || random {
		if logit == 0 {
			logit = InitLogitScale
		}
		if !random {
			seed = int64(cfg.Seed)
		}
		return clip.NewRandomTextTower(j.be, j.in.Model, seed), logit, nil
	}
	if cfg.NewProjection {
		// The temperature belongs to the two projections, one of them new:
		// start where a random-init run starts.
		if logit == 0 {
			logit = InitLogitScale
		}
		text, err := withNewProjection(j.be, j.given, j.in.Model, cfg.Weights, int64(cfg.Seed))
		if err != nil {
			return nil, 0, fmt.Errorf("tune: --weights: %w", err)
		}
		return text, logit, nil
	}
	text, err := clip.LoadTextTower(j.be, j.in.Model, cfg.Weights)
	if err != nil {
		return nil, 0, fmt.Errorf("tune: --weights: %w", err)
	}
	if logit == 0 {
		logit = InitLogitScale
		v, ok, err := clip.ReadLogitScale(cfg.Weights)
		if err != nil {
			return nil, 0, fmt.Errorf("tune: --weights: %w", err)
		}
		if ok {
			logit = min(max(v, 0), MaxLogitScale)
		}
	}
	return text, logit, nil
}

// writeConfig writes OUT/config.json, the run's settings.
func writeConfig(cfg Config) error {
	b, err := json.MarshalIndent(cfg, "", " ")
	if err != nil {
		return fmt.Errorf("tune: config.json: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(cfg.Out, "config.json"), append(b, '\n')); err != nil {
		return fmt.Errorf("tune: config.json: %w", err)
	}
	return nil
}

// checkIdentity refuses to resume a run with settings that change its
// trajectory (OUT/config.json against cfg).
func checkIdentity(cfg Config) error {
	b, err := os.ReadFile(filepath.Join(cfg.Out, "config.json"))
	if err != nil {
		return fmt.Errorf("tune: resume: %w", err)
	}
	var old Config
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("tune: resume: %s: %w", filepath.Join(cfg.Out, "config.json"), err)
	}
	a, _ := json.Marshal(old.identity())
	c, _ := json.Marshal(cfg.identity())
	if !bytes.Equal(a, c) {
		return fmt.Errorf("tune: resume: settings differ from the run in %s:\n  was %s\n  now %s", cfg.Out, a, c)
	}
	return nil
}
