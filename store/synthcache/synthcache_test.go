package synthcache

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/store"
)

func small() Options {
	o := INat2021()
	o.TrainRows, o.ValRows, o.Classes, o.Dim, o.PartRows, o.MinPerClass = 6000, 500, 50, 32, 1000, 5
	return o
}

// TestBuild checks the layout (splits, parts, classes.json), the long tail,
// and that the embeddings carry their class: each row's nearest class
// centre is its own for almost every row at the default noise.
func TestBuild(t *testing.T) {
	o := small()
	res, err := Build(context.Background(), t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.TrainRows != o.TrainRows || res.ValRows != o.ValRows || res.Parts != 6+1 {
		t.Fatalf("result %+v", res)
	}
	if want := int64(o.TrainRows+o.ValRows) * int64(o.Dim) * 2; res.EmbBytes != want || res.Bytes <= want {
		t.Errorf("bytes %d, embedding bytes %d (want %d)", res.Bytes, res.EmbBytes, want)
	}
	classes, err := inat.LoadClasses(res.Classes)
	if err != nil || len(classes) != o.Classes {
		t.Fatalf("classes: %d, %v", len(classes), err)
	}
	byID := map[int32]int{}
	for k, c := range classes {
		byID[int32(c.ID)] = k
	}
	r, err := store.Open(res.Cache, store.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	centres := classCentres(classes, o)
	counts := make([]int, o.Classes)
	right, rows := 0, 0
	emb := make([]float32, o.Dim)
	for _, p := range r.Split("train") {
		for i, l := range p.Labels() {
			k := byID[l]
			counts[k]++
			if p.Caption(i) != classes[k].Caption {
				t.Fatalf("part %s row %d: caption %q, class %d's is %q", p.Name, i, p.Caption(i), l, classes[k].Caption)
			}
			p.Row(i, emb)
			if nearest(emb, centres, o.Dim) == k {
				right++
			}
			rows++
		}
	}
	// Measured: 100% at noise 1 with 50 classes in 32-d; a broken noise or
	// centre (rows of another class) falls far below.
	if frac := float64(right) / float64(rows); frac < 0.95 {
		t.Errorf("nearest centre is the row's class for %.3f of rows, want ≥ 0.95", frac)
	}
	slices.Sort(counts)
	if counts[0] < o.MinPerClass || counts[len(counts)-1] < 3*counts[0] {
		t.Errorf("train class sizes %d..%d: want ≥ %d and a long tail", counts[0], counts[len(counts)-1], o.MinPerClass)
	}
	val := r.Split("val")
	if len(val) != 1 || val[0].N != o.ValRows {
		t.Fatalf("val parts %d", len(val))
	}
	vc := map[int32]int{}
	for _, l := range val[0].Labels() {
		vc[l]++
	}
	for id, n := range vc {
		if n != o.ValRows/o.Classes {
			t.Errorf("val class %d has %d rows, want %d", id, n, o.ValRows/o.Classes)
		}
	}
	if _, err := store.Verify(res.Cache, store.VerifyOptions{}); err != nil {
		t.Errorf("verify: %v", err)
	}
}

// TestDeterministic: the same seed gives the same parts whatever the
// number of workers.
func TestDeterministic(t *testing.T) {
	o := small()
	o.TrainRows, o.ValRows = 3000, 100
	o.Workers = 1
	a, err := Build(context.Background(), filepath.Join(t.TempDir(), "a"), o)
	if err != nil {
		t.Fatal(err)
	}
	o.Workers = 3
	b, err := Build(context.Background(), filepath.Join(t.TempDir(), "b"), o)
	if err != nil {
		t.Fatal(err)
	}
	ma, _ := store.ReadManifest(a.Cache)
	mb, _ := store.ReadManifest(b.Cache)
	ra, _ := store.Open(a.Cache, store.ReadOptions{})
	rb, _ := store.Open(b.Cache, store.ReadOptions{})
	defer ra.Close()
	defer rb.Close()
	if ma.Rows != mb.Rows || len(ra.Parts()) != len(rb.Parts()) {
		t.Fatalf("%d vs %d rows", ma.Rows, mb.Rows)
	}
	for i, p := range ra.Parts() {
		if p.Marker.SHA256 != rb.Parts()[i].Marker.SHA256 {
			t.Errorf("part %s differs between 1 and 3 workers", p.Name)
		}
	}
	if _, err := Build(context.Background(), filepath.Dir(a.Cache), o); err == nil {
		t.Error("building over an existing cache succeeded")
	}
}

func nearest(x, centres []float32, D int) int {
	best, bi := float32(math.Inf(-1)), -1
	for k := 0; k < len(centres)/D; k++ {
		var s float32
		for d, v := range centres[k*D : (k+1)*D] {
			s += v * x[d]
		}
		if s > best {
			best, bi = s, k
		}
	}
	return bi
}
