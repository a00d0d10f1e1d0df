package cuda

import (
	"math"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

// skewed is the CPU backend with one fault planted: attention at ViT-L's
// token count comes out 5% large, or GELU layers return NaN.
type skewed struct {
	backend.Backend
	attention, nanGELU bool
}

func (s skewed) Name() string { return "skewed cpu" }

func (s skewed) Attention(out, qkv backend.Tensor, B, T, H int, causal bool, probs backend.Tensor) {
	s.Backend.Attention(out, qkv, B, T, H, causal, probs)
	if s.attention && T == 257 {
		s.Backend.Scale(out, 1.05)
	}
}

func (s skewed) Linear(out, x, w, bias backend.Tensor, act backend.Act) {
	s.Backend.Linear(out, x, w, bias, act)
	if s.nanGELU && act == backend.ActGELU {
		s.Backend.Scale(out, float32(math.NaN()))
	}
}

// TestSelfCheckComparison tests the self-check's comparison without a GPU:
// the CPU against itself passes; a fault only the ViT-L/14-shaped case can
// see (attention wrong at T = 257 only) fails naming that output, which the
// small case alone would have passed; a NaN never passes.
func TestSelfCheckComparison(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ViT-L-sized ops on the CPU")
	}
	cpu := backend.NewCPU()
	res, err := compareBackends(cpu, cpu, 1e-6)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 7 {
		t.Fatalf("%d outputs compared, want 7: %v", len(res), res)
	}
	_, err = compareBackends(skewed{Backend: cpu, attention: true}, cpu, 3e-2)
	if err == nil || !strings.Contains(err.Error(), "vit-l14/attention") || strings.Contains(err.Error(), "small/") {
		t.Fatalf("attention fault at T=257: want a failure naming vit-l14/attention only, got %v", err)
	}
	_, err = compareBackends(skewed{Backend: cpu, nanGELU: true}, cpu, 3e-2)
	if err == nil || !strings.Contains(err.Error(), "vit-l14/gelu: relative error NaN") {
		t.Fatalf("NaN GELU: want a failure naming vit-l14/gelu, got %v", err)
	}
}
