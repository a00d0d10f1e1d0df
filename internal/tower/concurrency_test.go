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

// TestBatchSplit: an image's embedding does not depend on its batch: 40
// images at once (two pooling chunks of 32 and 8) against 25 + 15. GEMM
// blocking differs with the row count, so within 1e-6 relative, not bitwise;
// a pooling matrix that mixed images or a chunk offset off by one would be
// order 1.
func TestBatchSplit(t *testing.T) {
	be := backend.NewCPU()
	for _, spec := range []Spec{
		{Model: fixtureConfig(t, "dinov2-tiny-swiglu"), Weights: "random:8", Pool: "cls+mean"},
		{Model: fixtureConfig(t, "dinov2-tiny"), Weights: "random:8", Pool: "mean"},
		{Model: fixtureConfig(t, "swin-tiny-pad"), Weights: "random:8"},
	} {
		tw, err := Load(be, spec)
		if err != nil {
			t.Fatal(err)
		}
		n, S := 40, tw.ImageSize()
		px := randPixels(n, S, 2)
		all := tw.Encode(px, n)
		cut := 25 * 3 * S * S
		parts := append(tw.Encode(px[:cut], 25), tw.Encode(px[cut:], 15)...)
		var num, den float64
		for i := range all {
			d := float64(all[i] - parts[i])
			num += d * d
			den += float64(parts[i]) * float64(parts[i])
		}
		if e := num / den; e > 1e-12 {
			t.Errorf("%s %s: batch of 40 vs 25+15: relative error %.3g", tw.Family(), tw.Pool(), e)
		}
		tw.Free()
	}
}
