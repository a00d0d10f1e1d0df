package clip

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

// TestEncodeConcurrent: Encode on both towers from several goroutines gives
// the single-goroutine results (run with -race).
func TestEncodeConcurrent(t *testing.T) {
	be := backend.NewCPU()
	cfg := tinyConfig(t)
	m := NewRandomModel(be, cfg, 9)
	S, T := cfg.Vision.ImageSize, cfg.Text.ContextLength
	px := randn(rand.New(rand.NewPCG(1, 1)), 2*3*S*S)
	ids := make([]int32, 2*T)
	for i := range ids {
		ids[i] = int32(i % (cfg.Text.VocabSize - 1))
	}
	wantImg, wantTxt := m.Vision.Encode(px, 2), m.Text.Encode(ids, 2, T)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !slices.Equal(m.Vision.Encode(px, 2), wantImg) {
				t.Error("image embeddings differ")
			}
			if !slices.Equal(m.Text.Encode(ids, 2, T), wantTxt) {
				t.Error("text embeddings differ")
			}
		}()
	}
	wg.Wait()
}
