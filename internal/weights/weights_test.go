package weights

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/safetensors"
)

func TestLoadConcatenatesParts(t *testing.T) {
	src := Map{
		"q": {Name: "q", Shape: []int{1, 2}, Data: []float32{1, 2}},
		"k": {Name: "k", Shape: []int{1, 2}, Data: []float32{3, 4}},
		"v": {Name: "v", Shape: []int{1, 2}, Data: []float32{5, 6}},
		"t": {Name: "t", Shape: []int{1, 1, 2}, Data: []float32{7, 8}},
	}
	table := []Binding{
		{Name: "qkv", Shape: []int{3, 2}, Parts: []Part{{"q", []int{1, 2}}, {"k", []int{1, 2}}, {"v", []int{1, 2}}}},
		One("tok", []int{2}, "t", []int{1, 1, 2}),
	}
	got, err := Load(src, "fake", "test names", table, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got["qkv"], []float32{1, 2, 3, 4, 5, 6}) || !slices.Equal(got["tok"], []float32{7, 8}) {
		t.Errorf("got %v", got)
	}
}

func TestLoadReportsEverything(t *testing.T) {
	src := Map{
		"a":     {Name: "a", Shape: []int{3}, Data: []float32{1, 2, 3}},
		"extra": {Name: "extra", Shape: []int{1}, Data: []float32{0}},
		"buf":   {Name: "buf", Shape: []int{1}, Data: []float32{0}},
	}
	table := []Binding{One("a", []int{2}, "a", nil), One("b", []int{1}, "b", nil)}
	_, err := Load(src, "x.safetensors", "test names", table, func(n string) bool { return n == "buf" })
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error, got %v", err)
	}
	if !slices.Equal(e.Missing, []string{"b"}) || !slices.Equal(e.Unexpected, []string{"extra"}) || len(e.Misshaped) != 1 {
		t.Errorf("%+v", e)
	}
	for _, s := range []string{"x.safetensors (test names)", "3 problem(s)", "missing b", "unexpected extra", "mis-shaped a: [3] in the file, want [2]"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q lacks %q", err, s)
		}
	}
}

func TestRenamedAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	err := safetensors.Write(path, []safetensors.Tensor{
		safetensors.F32("blocks.0.3.w", []int{2}, []float32{1, 2}),
		safetensors.F32("idx", []int{2}, []float32{4, 5}),
		safetensors.I64("idx64", []int{2}, []int64{6, 7}),
		safetensors.F32("frac", []int{1}, []float32{0.5}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := Renamed(f, func(n string) string { return strings.Replace(n, "blocks.0.3.", "blocks.3.", 1) })
	if d, err := r.Float32("blocks.3.w"); err != nil || !slices.Equal(d, []float32{1, 2}) {
		t.Errorf("renamed read: %v %v", d, err)
	}
	if _, ok := r.Shape("blocks.0.3.w"); ok {
		t.Error("the old name still answers")
	}
	if d, err := f.Int64s("idx"); err != nil || !slices.Equal(d, []int64{4, 5}) {
		t.Errorf("float buffer as ints: %v %v", d, err)
	}
	if d, err := f.Int64s("idx64"); err != nil || !slices.Equal(d, []int64{6, 7}) {
		t.Errorf("int64 buffer: %v %v", d, err)
	}
	if _, err := f.Int64s("frac"); err == nil {
		t.Error("0.5 read as an integer")
	}
}
