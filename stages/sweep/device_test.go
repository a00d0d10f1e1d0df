package sweep

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/backend/backendtest"
	"github.com/litcache/litcache/store"
	"github.com/litcache/litcache/store/synthcache"
)

// TestRunDeviceFailure: a device failure inside an op (the backend panics
// with a *cuda.OpError, as the CUDA backend does) ends the sweep with an
// error naming the op and the CUDA error, not a crash.
func TestRunDeviceFailure(t *testing.T) {
	dir := t.TempDir()
	c, err := synthcache.Build(context.Background(), dir, synthcache.Options{TrainRows: 64, ValRows: 16, Classes: 4,
		Dim: 16, DType: store.Float32, PartRows: 32, Noise: 0.5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model.json")
	os.WriteFile(model, []byte(`{"embed_dim": 16,
 "vision_cfg": {"image_size": 32, "patch_size": 16, "width": 32, "layers": 1, "head_width": 16, "mlp_ratio": 2},
 "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 1, "mlp_ratio": 2},
 "quick_gelu": true}`), 0o644)
	cfg := DefaultConfig()
	cfg.Out, cfg.Grid = filepath.Join(dir, "sweep"), Grid{Warmup: []int{1, 2}}
	b := &cfg.Base
	b.Cache, b.Classes, b.Model, b.Epochs, b.BatchSize, b.Quiet = c.Cache, c.Classes, model, 1, 8, true
	b.TextOnly = true // the synthetic cache records no image tower
	b.Backend = &backendtest.Failing{Backend: backend.NewCPU(), Op: "LayerNorm",
		Err: &cuda.OpError{Op: "LayerNorm", Err: &cuda.Error{Call: "cuStreamSynchronize", Code: 700,
			Name: "CUDA_ERROR_ILLEGAL_ADDRESS", Text: "an illegal memory access was encountered"}}}
	_, _, err = Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "cuda: LayerNorm: ") || !strings.Contains(err.Error(), "CUDA_ERROR_ILLEGAL_ADDRESS") {
		t.Fatalf("error %v, want one naming the op and the CUDA error", err)
	}
	t.Log(err)
}
