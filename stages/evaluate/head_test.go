package evaluate

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/safetensors"
)

// TestApplyImageHead: a tuned run's image head (tune --image-head) is applied
// to the cached embeddings as stored, then the result L2-normalised; without
// a file the embeddings are only normalised, in place.
func TestApplyImageHead(t *testing.T) {
	be := backend.NewCPU()
	img := []float32{3, 4, 0, 1} // two 2-d rows
	dir := t.TempDir()
	got, dim, err := applyImageHead(be, filepath.Join(dir, ImageHeadFile), img, 2, 2)
	if err != nil || dim != 2 || &got[0] != &img[0] {
		t.Fatalf("without a head file: %v, dim %d, copied %v", err, dim, &got[0] != &img[0])
	}
	if want := []float32{0.6, 0.8, 0, 1}; math.Abs(float64(got[0]-want[0])) > 1e-6 || math.Abs(float64(got[1]-want[1])) > 1e-6 || got[2] != 0 || got[3] != 1 {
		t.Fatalf("without a head file: %v, want the rows normalised %v", got, want)
	}
	img = []float32{3, 4, 0, 1}
	// head: 2 → 3, y = (x0, x1, x0+x1) + (0, 0, 1)
	p := filepath.Join(dir, ImageHeadFile)
	if err := safetensors.Write(p, []safetensors.Tensor{
		safetensors.F32("image_head.weight", []int{3, 2}, []float32{1, 0, 0, 1, 1, 1}),
		safetensors.F32("image_head.bias", []int{3}, []float32{0, 0, 1}),
	}, nil); err != nil {
		t.Fatal(err)
	}
	got, dim, err = applyImageHead(be, p, img, 2, 2)
	if err != nil || dim != 3 {
		t.Fatalf("head: %v, dim %d", err, dim)
	}
	want := [][]float64{{3, 4, 8}, {0, 1, 2}}
	for r, w := range want {
		n := math.Sqrt(w[0]*w[0] + w[1]*w[1] + w[2]*w[2])
		for c := range w {
			if d := math.Abs(float64(got[r*3+c]) - w[c]/n); d > 1e-6 {
				t.Fatalf("row %d col %d: %g, want %g", r, c, got[r*3+c], w[c]/n)
			}
		}
	}
	if _, _, err := applyImageHead(be, p, make([]float32, 6), 2, 3); err == nil {
		t.Fatal("a head for 2-d inputs accepted 3-d embeddings")
	}
}
