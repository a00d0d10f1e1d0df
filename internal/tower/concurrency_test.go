package tower

import (
	"slices"
	"sync"
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

// TestConcurrentEncode: Encode is safe for concurrent use (extract's tower
// stage runs batches side by side); each family's lazily built tables (the
// resized positions, the window biases) are made once under their lock.
// Run with -race.
func TestConcurrentEncode(t *testing.T) {
	be := backend.NewCPU()
	for _, spec := range []Spec{
		{Model: "testdata-dinov2", Weights: "random:3", Pool: "cls+mean"},
		{Model: "testdata-swin", Weights: "random:3"},
	} {
		spec.Model = map[string]string{"testdata-dinov2": fixtureConfig(t, "dinov2-tiny-swiglu"), "testdata-swin": fixtureConfig(t, "swin-tiny-pad")}[spec.Model]
		tw, err := Load(be, spec)
		if err != nil {
			t.Fatal(err)
		}
		px := randPixels(2, tw.ImageSize(), 6)
		var wg sync.WaitGroup
		out := make([][]float32, 4)
		for i := range out {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				out[i] = tw.Encode(px, 2)
			}(i)
		}
		wg.Wait()
		for i := 1; i < len(out); i++ {
			if !slices.Equal(out[i], out[0]) {
				t.Errorf("%s: goroutine %d got other embeddings", tw.Family(), i)
			}
		}
		tw.Free()
	}
}
