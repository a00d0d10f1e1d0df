package evaluate_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/backend/backendtest"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/stages/evaluate"
)

// deviceFault is what the CUDA backend panics with when a kernel faults.
func deviceFault(op string) error {
	return &cuda.OpError{Op: op, Err: &cuda.Error{Call: "cuStreamSynchronize", Code: 700,
		Name: "CUDA_ERROR_ILLEGAL_ADDRESS", Text: "an illegal memory access was encountered"}}
}

// TestRunDeviceFailure: a device failure inside an op (the backend panics
// with a *cuda.OpError, as the CUDA backend does) ends evaluate.Run with an
// error naming the op and the CUDA error, not a crash; with Recover removed
// from Run the panic kills the test binary.
func TestRunDeviceFailure(t *testing.T) {
	f := newFixture(t)
	cache := writeCache(t, f, 0.02)
	final := filepath.Join(f.dir, "run", "final", "open_clip_model.safetensors")
	os.MkdirAll(filepath.Dir(final), 0o755)
	if err := clip.SaveTextTower(final, f.cfg, f.text, 2.0); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"LayerNorm", "Gemm"} {
		cfg := evaluate.DefaultConfig()
		cfg.Cache, cfg.Classes, cfg.Vocab, cfg.Quiet = cache, f.classes, f.vocab, true
		cfg.Weights = filepath.Join(f.dir, "run")
		cfg.Backend = &backendtest.Failing{Backend: backend.NewCPU(), Op: op, Err: deviceFault(op)}
		_, err := evaluate.Run(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "cuda: "+op+": ") || !strings.Contains(err.Error(), "CUDA_ERROR_ILLEGAL_ADDRESS") {
			t.Errorf("%s failing: error %v, want one naming the op and the CUDA error", op, err)
		} else {
			t.Log(err)
		}
	}
}
