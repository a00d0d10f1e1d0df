package tune

import (
	"slices"
	"sort"
	"testing"

	"github.com/litcache/litcache/store"
)

// TestStoreSourceMatchesRows reads the synthetic cache back through
// StoreSource: images grouped from their consecutive view rows, labels,
// captions and every view's embedding as written.
func TestStoreSourceMatchesRows(t *testing.T) {
	w := newTestWorld(t)
	s, err := OpenStoreSource(w.cache, "", store.SplitTrain, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := w.train
	if s.Len() != m.Len() || s.Views() != m.Views() || s.Dim() != m.Dim() {
		t.Fatalf("store source %d images × %d views × %d, written %d × %d × %d", s.Len(), s.Views(), s.Dim(), m.Len(), m.Views(), m.Dim())
	}
	a, b := make([]float32, s.Dim()), make([]float32, s.Dim())
	for i := 0; i < s.Len(); i++ {
		for v := 0; v < s.Views(); v++ {
			la, lb := s.Row(i, v, a), m.Row(i, v, b)
			if la != lb || !slices.Equal(a, b) {
				t.Fatalf("image %d view %d differs from what was written", i, v)
			}
		}
		if s.Label(i) != m.Label(i) || s.Caption(i) != m.Caption(i) {
			t.Fatalf("image %d: label %d caption %q, written %d %q", i, s.Label(i), s.Caption(i), m.Label(i), m.Caption(i))
		}
	}
	if _, err := OpenStoreSource(w.cache, "val", store.SplitTrain, ""); err == nil {
		t.Error("a split the cache lacks was accepted")
	}
}

// TestEpochOrder: each epoch is a permutation with one view per image, fixed
// by (seed, epoch) alone, and epochs differ.
func TestEpochOrder(t *testing.T) {
	const N, V = 50, 3
	p0, v0 := epochOrder(7, 0, N, V)
	p0b, v0b := epochOrder(7, 0, N, V)
	p1, _ := epochOrder(7, 1, N, V)
	if !slices.Equal(p0, p0b) || !slices.Equal(v0, v0b) {
		t.Fatal("epoch order is not fixed by (seed, epoch)")
	}
	if slices.Equal(p0, p1) {
		t.Fatal("epochs 0 and 1 have the same order")
	}
	s := slices.Clone(p0)
	sort.Ints(s)
	for i, x := range s {
		if x != i {
			t.Fatalf("epoch order is not a permutation of 0..%d", N-1)
		}
	}
	seen := map[uint8]bool{}
	for _, v := range v0 {
		if v >= V {
			t.Fatalf("view %d of %d", v, V)
		}
		seen[v] = true
	}
	if len(seen) != V {
		t.Errorf("views drawn %v, want all of 0..%d over %d images", seen, V-1, N)
	}
	if _, views := epochOrder(7, 0, N, 1); views != nil {
		t.Error("a single-view cache got view choices")
	}
}
