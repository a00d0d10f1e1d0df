package tune

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/cuda/emu"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/backend/backendtest"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/tokenizer"
	"github.com/litcache/litcache/stages/evaluate"
)

// The GPU path of a run (gpu.go) on the CUDA emulator (cuda/emu: the real
// kernels, compiled as C++ and run on the CPU): the same run as on the CPU,
// resume, and what a device failure leaves behind. The emulator proves the
// logic, not a GPU's speed; .gpu/check.sh runs cuda/littest on a GPU.

func TestMain(m *testing.M) { emu.Main(m) }

// emulated opens a backend on the emulator, or skips where it cannot be built.
func emulated(t *testing.T, p cuda.Precision) *cuda.Backend {
	return emu.Open(t, cuda.Options{Precision: p})
}

// finalTensors reads a run's final text tower (and logit_scale) by name.
func finalTensors(t *testing.T, res Result, cfg Config) map[string][]float32 {
	t.Helper()
	mcfg, err := clip.LoadConfig(cfg.Model)
	if err != nil {
		t.Fatal(err)
	}
	be := backend.NewCPU()
	text, err := clip.LoadTextTower(be, mcfg, filepath.Join(res.Final, modelFile))
	if err != nil {
		t.Fatal(err)
	}
	defer text.Free()
	out := map[string][]float32{}
	for _, p := range text.Params() {
		out[p.Name] = be.ToFloat32(p.Value, nil)
	}
	return out
}

// TestGPUMatchesCPU runs one configuration on the CPU trainer and on the
// GPU path in float32 (emulated) and compares every step's loss, gradient
// norm and logit scale, each epoch's zero-shot figures and val loss, and the
// final weights. Measured: steps and val loss within 2e-6 relative, weights
// within 3e-6 (the key projection's bias, whose true gradient is 0,
// excepted: both drift on rounding noise), top-1/top-5 equal; bounds 1e-4.
func TestGPUMatchesCPU(t *testing.T) {
	g := emulated(t, cuda.F32)
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"class captions", func(*Config) {}},
		{"image head, cached captions", func(c *Config) { c.ImageHead, c.Captions = true, CaptionsFromCache }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const tol = 1e-4
			w := newTestWorldSized(t, 10, 60, 40)
			cfg := w.config(filepath.Join(w.dir, "cpu"))
			cfg.Epochs, cfg.LR, cfg.Warmup = 2, 3e-3, 2
			tc.edit(&cfg)
			ref, err := w.runMem(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			gcfg := cfg
			gcfg.Out, gcfg.Backend = filepath.Join(w.dir, "gpu"), g
			got, err := w.runMem(t, gcfg)
			if err != nil {
				t.Fatal(err)
			}
			rs, re, _ := ReadMetrics(ref.Metrics)
			gs, ge, _ := ReadMetrics(got.Metrics)
			if len(rs) != len(gs) || len(re) != len(ge) || len(gs) == 0 {
				t.Fatalf("%d step and %d epoch lines on the GPU, %d and %d on the CPU", len(gs), len(ge), len(rs), len(re))
			}
			worst := 0.0
			for i := range rs {
				for _, d := range [][2]float64{{gs[i].Loss, rs[i].Loss}, {gs[i].GradNorm, rs[i].GradNorm}, {gs[i].LogitScale, rs[i].LogitScale}, {gs[i].LR, rs[i].LR}} {
					worst = max(worst, relDiff(d[0], d[1]))
				}
				if gs[i].Unique != rs[i].Unique {
					t.Errorf("step %d: %d distinct captions on the GPU, %d on the CPU", i, gs[i].Unique, rs[i].Unique)
				}
			}
			for i := range re {
				if *ge[i].Top1 != *re[i].Top1 || *ge[i].Top5 != *re[i].Top5 {
					t.Errorf("epoch %d: GPU top-1 %.4f top-5 %.4f, CPU %.4f %.4f", i+1, *ge[i].Top1, *ge[i].Top5, *re[i].Top1, *re[i].Top5)
				}
				worst = max(worst, relDiff(*ge[i].ValLoss, *re[i].ValLoss), relDiff(ge[i].Loss, re[i].Loss))
			}
			rw, gw := finalTensors(t, ref, cfg), finalTensors(t, got, gcfg)
			worstW, worstName := 0.0, ""
			for name, want := range rw {
				gv := gw[name]
				if strings.HasSuffix(name, "in_proj_bias") { // the key third drifts on noise (true gradient 0)
					n := len(want) / 3
					want = append(append([]float32{}, want[:n]...), want[2*n:]...)
					gv = append(append([]float32{}, gv[:n]...), gv[2*n:]...)
				}
				if d := relL2(gv, want); d > worstW {
					worstW, worstName = d, name
				}
			}
			t.Logf("GPU against CPU: steps and epochs %.3g relative, final weights %.3g (%s); top-1 %.4f, top-5 %.4f",
				worst, worstW, worstName, got.Top1, got.Top5)
			if worst > tol || worstW > tol {
				t.Errorf("the GPU path differs from the CPU's by %.3g (figures) and %.3g (weights, %s); bound %g", worst, worstW, worstName, tol)
			}
			if got.Top1 <= 0.1 {
				t.Errorf("top-1 %.3f is at chance: the comparison is idle", got.Top1)
			}
		})
	}
}

// TestGPUResumeIsExact stops a GPU run mid-epoch and resumes it: the final
// weights and the metrics equal an uninterrupted run's bit for bit (the
// emulator's arithmetic is deterministic; the host mirror carries the exact
// masters and moments through the checkpoint).
func TestGPUResumeIsExact(t *testing.T) {
	for _, p := range []cuda.Precision{cuda.F32, cuda.BF16} {
		t.Run(p.String(), func(t *testing.T) {
			g := emulated(t, p)
			w := newTestWorld(t)
			base := w.config(filepath.Join(w.dir, "full"))
			base.Epochs, base.Backend = 2, g
			ref, err := w.runMem(t, base)
			if err != nil {
				t.Fatal(err)
			}
			cfg := base
			cfg.Out, cfg.StopAfter = filepath.Join(w.dir, "stopped"), 3
			if r, err := w.runMem(t, cfg); err != nil || !r.Stopped {
				t.Fatalf("stopped run: %+v, %v", r, err)
			}
			cfg.StopAfter, cfg.Resume = 0, true
			got, err := w.runMem(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			rw, gw := finalTensors(t, ref, base), finalTensors(t, got, cfg)
			for name, want := range rw {
				if d := relL2(gw[name], want); d != 0 {
					t.Errorf("%s: resumed run differs by %.3g", name, d)
				}
			}
			rs, re, _ := ReadMetrics(ref.Metrics)
			gs, ge, _ := ReadMetrics(got.Metrics)
			for i := range rs {
				rs[i].SamplesPerS, gs[i].SamplesPerS = 0, 0
				if i >= len(gs) || gs[i] != rs[i] {
					t.Fatalf("step line %d: resumed %+v, uninterrupted %+v", i, gs[min(i, len(gs)-1)], rs[i])
				}
			}
			if len(ge) != len(re) || *ge[len(ge)-1].Top1 != *re[len(re)-1].Top1 {
				t.Errorf("epoch lines differ: %+v vs %+v", ge, re)
			}
		})
	}
}

// TestGPUEvalFailureKeepsTheEpoch: the device runs out of memory while
// scoring the first epoch (the classifier hook caps the emulator's memory
// once the classifier is built: the next allocation is the classifier's
// upload). The run stops with an error naming
// the op and the size asked for, and a checkpoint of the epoch's training
// that a resume continues from by scoring the epoch again.
func TestGPUEvalFailureKeepsTheEpoch(t *testing.T) {
	g := emulated(t, cuda.F32)
	w := newTestWorld(t)
	cfg := w.config(filepath.Join(w.dir, "run"))
	cfg.Epochs, cfg.Backend = 2, g
	mcfg, err := clip.LoadConfig(cfg.Model)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(cfg.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	in, err := BuildInputs(cfg, mcfg, mcfg.Text.ContextLength, tok, w.classList, w.train, w.valMem)
	if err != nil {
		t.Fatal(err)
	}
	capped := false
	in.Classifier = func(enc evaluate.TextEncoder) ([]float32, error) {
		emb, err := evaluate.ClassEmbeddings(enc, tok, w.classList, evaluate.CaptionTemplates, mcfg.Text.ContextLength)
		if !capped {
			free, total, _ := g.Device().MemInfo()
			os.Setenv("LITCACHE_EMU_MEM_LIMIT", fmt.Sprint(total-free+1))
			capped = true
		}
		return emb, err
	}
	_, err = RunInputs(context.Background(), cfg, in)
	os.Unsetenv("LITCACHE_EMU_MEM_LIMIT")
	if err == nil {
		t.Fatal("no error from a run whose scoring ran out of memory")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"epoch 1's evaluation failed", "class embeddings", "cuMemAlloc(", "CUDA_ERROR_OUT_OF_MEMORY", "--resume"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	ckpt, err := LatestCheckpoint(cfg.Out)
	if err != nil || ckpt == "" {
		t.Fatalf("no checkpoint after the failure: %q %v", ckpt, err)
	}
	st, err := ReadTrainerState(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	spe := w.train.Len() / cfg.BatchSize
	if st.Step != spe || st.Epoch != 0 {
		t.Errorf("checkpoint at step %d, epoch %d; want the first epoch's %d steps, epoch 0 still to score", st.Step, st.Epoch, spe)
	}
	cfg.Resume = true
	res, err := RunInputs(context.Background(), cfg, in)
	if err != nil {
		t.Fatal(err)
	}
	_, eps, _ := ReadMetrics(res.Metrics)
	if len(eps) != 2 || eps[0].Top1 == nil {
		t.Errorf("after the resume: epoch lines %+v, want both epochs scored", eps)
	}
}

// TestGPUFaultNamesOp: a kernel fault in a step (the emulator's fault knob
// on AdamW's kernel, sticky as on a GPU, so in a child process) ends the run
// with an error naming the step, the CUDA error and, under
// LITCACHE_CUDA_SYNC=1, the kernel. At the first step the host mirror still
// holds the last good state (the start) and a checkpoint of it is written;
// at the third, the GPU's state is lost and the error says where to resume.
func TestGPUFaultNamesOp(t *testing.T) {
	if os.Getenv("TUNE_FAULT_CHILD") == "1" {
		g := emulated(t, cuda.BF16)
		w := newTestWorld(t)
		cfg := w.config(filepath.Join(w.dir, "run"))
		cfg.Backend = g
		_, err := w.runMem(t, cfg)
		fmt.Printf("child error: %v\n", err)
		return
	}
	if err := emu.Err(); err != nil {
		t.Skip(err)
	}
	for _, c := range []struct {
		sync, skip string
		wants      []string
	}{
		{"0", "0", []string{"tune: step 0 failed", "LITCACHE_CUDA_SYNC=1 to name it", "the last good step's checkpoint is", "step-0000000"}},
		{"1", "0", []string{"tune: step 0 failed", "kernel lit_adamw", "the last good step's checkpoint is", "step-0000000"}},
		{"1", "2", []string{"tune: step 2 failed", "kernel lit_adamw", "the GPU's state after it is lost: the latest checkpoint is none yet"}},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestGPUFaultNamesOp$", "-test.v")
		cmd.Env = append(os.Environ(), "TUNE_FAULT_CHILD=1", "LITCACHE_EMU_FAULT=lit_adamw",
			"LITCACHE_EMU_FAULT_SKIP="+c.skip, "LITCACHE_CUDA_SYNC="+c.sync)
		out, _ := cmd.CombinedOutput()
		line := ""
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "child error: ") {
				line = l
			}
		}
		t.Logf("LITCACHE_CUDA_SYNC=%s, fault after %s launches: %s", c.sync, c.skip, line)
		for _, want := range append(c.wants, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access") {
			if !strings.Contains(line, want) {
				t.Errorf("LITCACHE_CUDA_SYNC=%s, skip %s: %q does not say %q\n%s", c.sync, c.skip, line, want, out)
			}
		}
	}
}

// TestPrecisionNeedsTheGPU: bf16 and CUDA graphs are refused on the CPU.
func TestPrecisionNeedsTheGPU(t *testing.T) {
	w := newTestWorld(t)
	for _, edit := range []func(*Config){
		func(c *Config) { c.Precision = PrecisionBF16 },
		func(c *Config) { c.CUDAGraphs = true },
		func(c *Config) { c.Precision = "fp16" },
	} {
		cfg := w.config(filepath.Join(w.dir, "run"))
		edit(&cfg)
		if _, err := w.runMem(t, cfg); err == nil {
			t.Errorf("%+v ran on the CPU", cfg.Precision)
		} else {
			t.Log(err)
		}
	}
}

// TestRunDeviceFailure: on a backend other than the LiT trainer's (a
// generic one whose op panics with a *cuda.OpError, as the CUDA backend's
// ops do) a device failure ends the run with an error naming the op and the
// CUDA error, not a crash.
func TestRunDeviceFailure(t *testing.T) {
	w := newTestWorld(t)
	cfg := w.config(filepath.Join(w.dir, "run"))
	cfg.Backend = &backendtest.Failing{Backend: backend.NewCPU(), Op: "Attention",
		Err: &cuda.OpError{Op: "Attention", Err: &cuda.Error{Call: "cuStreamSynchronize", Code: 700,
			Name: "CUDA_ERROR_ILLEGAL_ADDRESS", Text: "an illegal memory access was encountered"}}}
	_, err := w.runMem(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "cuda: Attention: ") || !strings.Contains(err.Error(), "CUDA_ERROR_ILLEGAL_ADDRESS") {
		t.Fatalf("error %v, want one naming the op and the CUDA error", err)
	}
	t.Log(err)
}

// TestGPURunFromTheCache: Run itself (the store, classes.json, the
// tokenizer) on the emulated GPU gives the CPU's zero-shot figures and a
// final/ (the resident rows come from the cache's parts, read in order).
func TestGPURunFromTheCache(t *testing.T) {
	g := emulated(t, cuda.F32)
	w := newTestWorldSized(t, 10, 60, 40)
	cfg := w.config(filepath.Join(w.dir, "cpu"))
	cfg.Epochs, cfg.LR, cfg.Warmup, cfg.TextOnly = 2, 3e-3, 2, true
	ref, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Out, cfg.Backend = filepath.Join(w.dir, "gpu"), g
	got, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got.Final == "" || !got.HasVal || got.Top1 != ref.Top1 || got.Top5 != ref.Top5 || relDiff(got.Loss, ref.Loss) > 1e-4 {
		t.Errorf("GPU run %+v\nCPU run %+v", got, ref)
	}
}

// TestBucketsAgree: the GPU trainer buckets trimmed contexts as the text
// tower's Encode does (both in multiples of 8), so a run sees the same few
// shapes on either side.
func TestBucketsAgree(t *testing.T) {
	if cuda.TokenBucket != clip.ContextBucket {
		t.Fatalf("cuda.TokenBucket %d, clip.ContextBucket %d", cuda.TokenBucket, clip.ContextBucket)
	}
}
