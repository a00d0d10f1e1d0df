package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/litcache/litcache/internal/atomicfile"
	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/stages/tune"
	"github.com/litcache/litcache/store"
)

// The phases of `bench scale` run in child processes so that each one's
// peak RSS is its own (the child reads its VmHWM when the phase is done).
// A child is this same binary — litcache, or a test
// binary that links this package — started with $LITCACHE_BENCH_SCALE_CHILD
// holding the phase's scaleSpec as JSON: this package's init runs the phase,
// writes its result to spec.Result and exits, before main or the tests
// start. Nothing else in the binary runs in the child.
const scaleChildEnv = "LITCACHE_BENCH_SCALE_CHILD"

func init() {
	spec := os.Getenv(scaleChildEnv)
	if spec == "" {
		return
	}
	if err := runScaleChild(spec); err != nil {
		fmt.Fprintln(os.Stderr, "bench scale child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// scaleSpec is one phase's work, handed to the child.
type scaleSpec struct {
	Phase   string `json:"phase"` // "index", "verify", "tune" or "eval"
	Cache   string `json:"cache"`
	Classes string `json:"classes"`
	// Model is the text tower's config (JSON file) for tune; Out its run folder.
	Model string `json:"model,omitempty"`
	Out   string `json:"out,omitempty"`
	Batch int    `json:"batch,omitempty"`
	Steps int    `json:"steps,omitempty"`
	// Text is the tower eval scores with (tune's checkpoint).
	Text string `json:"text,omitempty"`
	// Result is the file the child writes its scaleResult to.
	Result string `json:"result"`
}

// scaleResult is what a child measured.
type scaleResult struct {
	Seconds float64 `json:"seconds"`  // the phase's call, process start excluded
	PeakRSS int64   `json:"peak_rss"` // bytes, the child's VmHWM after the phase (0: unknown)
	// index and verify
	Keys   int   `json:"keys,omitempty"`
	Parts  int   `json:"parts,omitempty"`
	Bytes  int64 `json:"bytes,omitempty"`
	Issues int   `json:"issues,omitempty"` // verify's problems
	// tune
	FirstStep   float64   `json:"first_step,omitempty"`
	SamplesPerS float64   `json:"samples_per_s,omitempty"`
	StepSeconds []float64 `json:"step_seconds,omitempty"` // tr.Step alone, per step (metrics.jsonl)
	Checkpoint  string    `json:"checkpoint,omitempty"`
	FirstLine   string    `json:"first_line,omitempty"` // tune's own "first step done" log line
	// eval
	Images        int     `json:"images,omitempty"`
	NumClasses    int     `json:"num_classes,omitempty"`
	Top1          float64 `json:"top1,omitempty"`
	ScoreSeconds  float64 `json:"score_seconds,omitempty"`
	EncodeSeconds float64 `json:"encode_seconds,omitempty"`
}

func runScaleChild(specJSON string) error {
	var spec scaleSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("$%s: %w", scaleChildEnv, err)
	}
	ctx := context.Background()
	var res scaleResult
	var err error
	t0 := time.Now()
	switch spec.Phase {
	case "index":
		var st store.IndexStats
		st, err = store.BuildIndex(spec.Cache, store.IndexOptions{})
		res.Keys, res.Parts, res.Bytes = st.Keys, st.Parts, st.Bytes
	case "verify":
		var rep store.VerifyReport
		rep, err = store.Verify(spec.Cache, store.VerifyOptions{})
		res.Keys, res.Parts, res.Bytes, res.Issues = rep.Keys, rep.Parts, rep.Bytes, len(rep.Problems)
		if err == nil && !rep.OK() {
			err = fmt.Errorf("verify found %d problems, the first: %s", len(rep.Problems), rep.Problems[0])
		}
	case "tune":
		res, err = scaleTune(ctx, spec)
	case "eval":
		res, err = scaleEval(ctx, spec)
	default:
		err = fmt.Errorf("unknown phase %q", spec.Phase)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", spec.Phase, err)
	}
	if res.Seconds == 0 {
		res.Seconds = time.Since(t0).Seconds()
	}
	if res.PeakRSS, err = selfPeakRSS(); err != nil {
		return err
	}
	b, _ := json.Marshal(res)
	return atomicfile.WriteFile(spec.Result, b)
}

// scaleTune runs tune on the cache's train split for spec.Steps steps
// (tune's own defaults otherwise: dedup, trim, global shuffle) with the
// text tower alone, the cache having no real image tower.
func scaleTune(ctx context.Context, spec scaleSpec) (scaleResult, error) {
	cfg := tune.DefaultConfig()
	cfg.Cache, cfg.Split, cfg.Classes = spec.Cache, store.SplitTrain, spec.Classes
	cfg.Model, cfg.Out = spec.Model, spec.Out
	cfg.BatchSize, cfg.StopAfter = spec.Batch, spec.Steps
	cfg.TextOnly, cfg.Seed = true, 1
	// The log is kept for its start-up line; the progress bar goes to the
	// child's stderr, which the parent shows only if the child fails.
	var log bytes.Buffer
	cfg.Log = &log
	t0 := time.Now()
	r, err := tune.Run(ctx, cfg)
	if err != nil {
		return scaleResult{}, err
	}
	res := scaleResult{Seconds: time.Since(t0).Seconds(), FirstStep: r.FirstStep.Seconds(),
		SamplesPerS: r.SamplesPerS, Checkpoint: r.Checkpoint}
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "first step done") {
			res.FirstLine = strings.TrimSpace(line)
		}
	}
	steps, _, err := tune.ReadMetrics(filepath.Join(spec.Out, "metrics.jsonl"))
	if err != nil {
		return res, err
	}
	for _, s := range steps {
		if s.SamplesPerS > 0 {
			res.StepSeconds = append(res.StepSeconds, float64(spec.Batch)/s.SamplesPerS)
		}
	}
	if len(res.StepSeconds) != r.Steps || r.Steps == 0 {
		return res, fmt.Errorf("%d steps run, %d timed in metrics.jsonl", r.Steps, len(res.StepSeconds))
	}
	return res, nil
}

// scaleEval scores the cache's val split against every class with the
// tuned checkpoint, writing no report.
func scaleEval(ctx context.Context, spec scaleSpec) (scaleResult, error) {
	cfg := evaluate.DefaultConfig()
	cfg.Cache, cfg.Split, cfg.Classes, cfg.Weights = spec.Cache, store.SplitVal, spec.Classes, spec.Text
	cfg.Quiet, cfg.Log = true, io.Discard
	t0 := time.Now()
	r, err := evaluate.Run(ctx, cfg)
	if err != nil {
		return scaleResult{}, err
	}
	return scaleResult{Seconds: time.Since(t0).Seconds(), Images: r.Images, NumClasses: r.Classes, Top1: r.Top1,
		ScoreSeconds: r.ScoreSeconds, EncodeSeconds: r.EncodeSeconds}, nil
}
