package store

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/litcache/litcache/internal/half"
)

// testManifest is a small cache identity for tests.
func testManifest(dim int, dtype string, views int) Manifest {
	return Manifest{Fingerprint: "sha256:test-tower", Model: "test", Dim: dim, DType: dtype, Views: views, Normalized: true,
		Producer: testProducer}
}

// testProducer is the producer of the test caches.
var testProducer = Producer{Backend: "cpu", Precision: "float32", Decoder: "go", Detail: "test"}

// fillPart writes part NAME with n samples of synthetic rows and rejects
// every sample whose index is in reject; it returns the rows written.
func fillPart(t *testing.T, c *Cache, split, shard string, n int, seed int64, reject map[int]bool) []row {
	t.Helper()
	m := c.Manifest()
	name := PartName(split, shard)
	w, err := c.NewPart(name, split, shard)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(seed))
	var rows []row
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("%s/%s/%06d", split, filepath.Base(shard), i)
		if reject[i] {
			w.Reject(key, "test: undecodable")
			continue
		}
		label := int32(rng.Intn(10))
		caption := fmt.Sprintf("a photo of species %d", label)
		for v := 0; v < m.Views; v++ {
			emb := make([]float32, m.Dim)
			for j := range emb {
				emb[j] = float32(rng.NormFloat64())
			}
			if err := w.Add(key, label, v, caption, emb); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, row{key, label, v, caption, emb})
		}
	}
	if _, err := w.Commit(0, 1, nil); err != nil {
		t.Fatal(err)
	}
	return rows
}

type row struct {
	key     string
	label   int32
	view    int
	caption string
	emb     []float32
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		dtype string
		views int
		n     int
	}{
		{Float32, 1, 50},
		{Float16, 1, 50},
		{Float16, 3, 20},
		{Float32, 2, 0},
	} {
		t.Run(fmt.Sprintf("%s-views%d-n%d", tc.dtype, tc.views, tc.n), func(t *testing.T) {
			dir := t.TempDir()
			c, err := Create(dir, testManifest(8, tc.dtype, tc.views))
			if err != nil {
				t.Fatal(err)
			}
			want := fillPart(t, c, "train", "/x/train-000001.tar", tc.n, 1, map[int]bool{3: true})
			if _, err := Finalize(dir); err != nil {
				t.Fatal(err)
			}
			r, err := Open(dir, ReadOptions{ExpectFingerprint: "sha256:test-tower"})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if len(r.Parts()) != 1 {
				t.Fatalf("%d parts", len(r.Parts()))
			}
			p := r.Parts()[0]
			if p.N != len(want) {
				t.Fatalf("N %d, want %d", p.N, len(want))
			}
			for i, w := range want {
				got := p.Row(i, nil)
				for j := range got {
					ref := w.emb[j]
					if tc.dtype == Float16 {
						ref = half.F16ToF32(half.F32ToF16(ref))
					}
					if got[j] != ref {
						t.Fatalf("row %d col %d: %v, want %v", i, j, got[j], ref)
					}
				}
				if p.Key(i) != w.key || p.Labels()[i] != w.label || int(p.Views()[i]) != w.view || p.Caption(i) != w.caption {
					t.Fatalf("row %d: %q %d %d %q, want %+v", i, p.Key(i), p.Labels()[i], p.Views()[i], p.Caption(i), w)
				}
			}
			m := r.Manifest()
			if tc.n > 3 && (m.Rejects != 1 || m.Samples != tc.n || m.Rows != len(want)) {
				t.Errorf("manifest counts %+v", m)
			}
		})
	}
}

func TestFingerprintRefusal(t *testing.T) {
	dir := t.TempDir()
	c, err := Create(dir, testManifest(4, Float32, 1))
	if err != nil {
		t.Fatal(err)
	}
	fillPart(t, c, "train", "a-000000.tar", 2, 1, nil) // the first part binds the cache
	_, err = Open(dir, ReadOptions{ExpectFingerprint: "sha256:other-tower"})
	if !errors.Is(err, ErrFingerprint) {
		t.Fatalf("err %v, want ErrFingerprint", err)
	}
	for _, fp := range []string{"sha256:test-tower", "sha256:other-tower"} {
		if !strings.Contains(err.Error(), fp) {
			t.Errorf("message %q does not name %s", err, fp)
		}
	}
	other := testManifest(4, Float32, 1)
	other.Fingerprint = "sha256:other-tower"
	_, err = Create(dir, other)
	if !errors.Is(err, ErrFingerprint) || !strings.Contains(err.Error(), "sha256:test-tower") || !strings.Contains(err.Error(), "sha256:other-tower") {
		t.Fatalf("Create over another tower's cache: %v", err)
	}
	_, err = Create(dir, testManifest(4, Float16, 1))
	if !errors.Is(err, ErrIncompatible) {
		t.Fatalf("Create with another dtype: %v", err)
	}
}

func TestNewPartClearsLeftovers(t *testing.T) {
	dir := t.TempDir()
	c, err := Create(dir, testManifest(4, Float32, 1))
	if err != nil {
		t.Fatal(err)
	}
	name := PartName("train", "s-000000.tar")
	for _, p := range []string{partPath(dir, name), partPath(dir, name) + ".tmp", rejectsPath(dir, name)} {
		os.WriteFile(p, []byte("junk"), 0o644)
	}
	w, err := c.NewPart(name, "train", "s-000000.tar")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(partPath(dir, name)); err == nil {
		t.Fatal("leftover part not removed")
	}
	w.Add("k", 1, 0, "c", []float32{1, 2, 3, 4})
	if _, err := w.Commit(0, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewPart(name, "train", "s-000000.tar"); err == nil {
		t.Fatal("NewPart over a finished part succeeded")
	}
}

func TestZeroCopy(t *testing.T) {
	for _, dtype := range []string{Float32, Float16} {
		t.Run(dtype, func(t *testing.T) {
			dir := t.TempDir()
			c, err := Create(dir, testManifest(16, dtype, 1))
			if err != nil {
				t.Fatal(err)
			}
			fillPart(t, c, "train", "a-000000.tar", 30, 2, nil)
			r, err := Open(dir, ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			p := r.Parts()[0]
			lo := uintptr(unsafe.Pointer(&p.data[0]))
			hi := lo + uintptr(len(p.data))
			in := func(ptr unsafe.Pointer) bool { return uintptr(ptr) >= lo && uintptr(ptr) < hi }
			var emb unsafe.Pointer
			if dtype == Float32 {
				emb = unsafe.Pointer(&p.EmbF32()[0])
			} else {
				emb = unsafe.Pointer(&p.EmbF16()[0])
			}
			if !in(emb) || !in(unsafe.Pointer(&p.Labels()[0])) || !in(unsafe.Pointer(&p.CaptionIDs()[0])) || !in(unsafe.Pointer(&p.Views()[0])) {
				t.Fatal("a column is not a view into the mapped file")
			}
		})
	}
}
