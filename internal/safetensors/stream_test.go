package safetensors

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestF32LazyMatchesF32: a file of lazily streamed tensors is byte for byte
// the file of the same tensors given as data, each tensor's values are asked
// for once, one shared buffer may serve every tensor, and a stream that
// writes the wrong byte count fails naming the tensor.
func TestF32LazyMatchesF32(t *testing.T) {
	vals := map[string][]float32{"a": {1, -2, 3.5}, "b": {4, 5, 6, 7, 8, 9}, "c": make([]float32, 5000)}
	for i := range vals["c"] {
		vals["c"][i] = float32(i) / 7
	}
	shapes := map[string][]int{"a": {3}, "b": {2, 3}, "c": {50, 100}}
	var eager, lazy []Tensor
	calls := map[string]int{}
	var shared []float32
	for _, n := range []string{"c", "a", "b"} {
		eager = append(eager, F32(n, shapes[n], vals[n]))
		lazy = append(lazy, F32Lazy(n, shapes[n], func() []float32 {
			calls[n]++
			shared = append(shared[:0], vals[n]...)
			return shared
		}))
	}
	meta := map[string]string{"k": "v"}
	want, err := Marshal(eager, meta)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "lazy.safetensors")
	if err := Write(path, lazy, meta); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("streamed file (%d bytes) differs from the eager one (%d bytes)", len(got), len(want))
	}
	for n, c := range calls {
		if c != 1 {
			t.Errorf("values of %s asked for %d times", n, c)
		}
	}
	m, err := Marshal(lazy, meta)
	if err != nil || !bytes.Equal(m, want) {
		t.Errorf("Marshal of streamed tensors differs (%v)", err)
	}

	short := Tensor{Name: "short", DType: "F32", Shape: []int{4}, Stream: func(w io.Writer) error {
		_, err := w.Write(make([]byte, 12))
		return err
	}}
	if err := Write(filepath.Join(dir, "bad.safetensors"), []Tensor{short}, nil); err == nil || !strings.Contains(err.Error(), `"short"`) {
		t.Errorf("a short stream: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.safetensors")); err == nil {
		t.Error("a failed write left its file")
	}
}
