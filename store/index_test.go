package store

import (
	"errors"
	"strings"
	"testing"
)

func TestIndex(t *testing.T) {
	dir := t.TempDir()
	c, err := Create(dir, testManifest(8, Float16, 2))
	if err != nil {
		t.Fatal(err)
	}
	a := fillPart(t, c, "train", "s-000000.tar", 40, 1, map[int]bool{5: true})
	b := fillPart(t, c, "train", "s-000001.tar", 25, 2, nil)
	st, err := BuildIndex(dir, IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Keys != 39+25 || st.Parts != 2 || st.Bytes <= 0 {
		t.Fatalf("stats %+v", st)
	}
	r, err := Open(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, rows := range [][]row{a, b} {
		for _, w := range rows {
			loc, err := r.Lookup(w.key)
			if err != nil {
				t.Fatal(err)
			}
			if loc.Views != 2 || loc.Part.Key(loc.Row+w.view) != w.key || int(loc.Part.Views()[loc.Row+w.view]) != w.view {
				t.Fatalf("key %q → %+v", w.key, loc)
			}
		}
	}
	if _, err := r.Lookup("no such key"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	// A second reader may open the index at the same time (read-only).
	r2, err := Open(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Lookup(a[0].key); err != nil {
		t.Fatal(err)
	}
	r2.Close()

	t.Run("stale after a new part", func(t *testing.T) {
		fillPart(t, c, "val", "v-000000.tar", 3, 3, nil)
		r3, err := Open(dir, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r3.Close()
		if _, err := r3.Lookup(a[0].key); !errors.Is(err, ErrStaleIndex) {
			t.Fatalf("err %v, want ErrStaleIndex", err)
		}
	})
	t.Run("no index", func(t *testing.T) {
		d := t.TempDir()
		c, _ := Create(d, testManifest(8, Float16, 1))
		fillPart(t, c, "train", "s-000000.tar", 3, 1, nil)
		r, err := Open(d, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.Lookup("x"); !errors.Is(err, ErrNoIndex) {
			t.Fatalf("err %v, want ErrNoIndex", err)
		}
	})
}

func TestIndexDuplicateKey(t *testing.T) {
	dir := t.TempDir()
	c, err := Create(dir, testManifest(4, Float32, 1))
	if err != nil {
		t.Fatal(err)
	}
	fillPart(t, c, "x", "s-000000.tar", 3, 1, nil)
	// The same key in another split is fine (a folder tree's sample numbers
	// repeat between train and val).
	w, _ := c.NewPart("y.other", "y", "other.tar")
	w.Add("x/s-000000.tar/000001", 1, 0, "c", []float32{1, 2, 3, 4})
	if _, err := w.Commit(0, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildIndex(dir, IndexOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if loc, err := r.LookupSplit("y", "x/s-000000.tar/000001"); err != nil || loc.Part.Name != "y.other" {
		t.Fatalf("LookupSplit y: %+v %v", loc, err)
	}
	if loc, err := r.Lookup("x/s-000000.tar/000001"); err != nil || loc.Part.Name != "x.s-000000" {
		t.Fatalf("Lookup: %+v %v", loc, err)
	}
	r.Close()
	// Within one split it is an error naming both parts.
	w, _ = c.NewPart("x.other", "x", "other.tar")
	w.Add("x/s-000000.tar/000001", 1, 0, "c", []float32{1, 2, 3, 4})
	if _, err := w.Commit(0, 1, nil); err != nil {
		t.Fatal(err)
	}
	_, err = BuildIndex(dir, IndexOptions{})
	if !errors.Is(err, ErrDuplicateKey) || !strings.Contains(err.Error(), "x.s-000000") || !strings.Contains(err.Error(), "x.other") {
		t.Fatalf("err %v, want ErrDuplicateKey naming both parts", err)
	}
	rep, err := Verify(dir, VerifyOptions{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(strings.Join(rep.Problems, "\n"), "x.other") {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
