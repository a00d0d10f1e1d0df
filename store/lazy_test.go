package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// damage rewrites one byte of part NAME, at the offset of ptr inside its
// mapping, to b, and re-stamps the marker's checksum so that only the
// column's own checks can notice.
func damage(t *testing.T, dir, name string, ptr func(p *Part) unsafe.Pointer, b byte) {
	t.Helper()
	r, err := Open(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var off int
	for _, p := range r.Parts() {
		if p.Name == name {
			off = int(uintptr(ptr(p)) - uintptr(unsafe.Pointer(&p.data[0])))
		}
	}
	r.Close()
	path := partPath(dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] = b
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mk, _, err := readMarker(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	mk.SHA256 = hex.EncodeToString(sum[:])
	js, _ := json.Marshal(mk)
	if err := os.WriteFile(markerPath(dir, name), js, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLazyColumnChecks: a part whose caption ids or keys are damaged still
// opens (those columns are checked on first use), training's columns work,
// the check names the part and column and wraps ErrCorrupt, the accessors
// it guards panic, and Verify and BuildIndex report it.
func TestLazyColumnChecks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ptr   func(p *Part) unsafe.Pointer
		b     byte
		check func(p *Part) error
		use   func(p *Part)
		want  string
	}{
		{"caption id", func(p *Part) unsafe.Pointer { return unsafe.Pointer(&p.capIDs[3]) }, 99,
			(*Part).CheckCaptions, func(p *Part) { p.Caption(0) }, "caption id 99"},
		{"key bytes", func(p *Part) unsafe.Pointer { return unsafe.Pointer(&p.keys.ValueBytes()[2]) }, 0xff,
			(*Part).CheckKeys, func(p *Part) { p.Key(0) }, "key column"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c, err := Create(dir, testManifest(8, Float16, 1))
			if err != nil {
				t.Fatal(err)
			}
			fillPart(t, c, "train", "a.tar", 6, 1, nil)
			fillPart(t, c, "train", "b.tar", 6, 2, nil)
			damage(t, dir, "train.b", tc.ptr, tc.b)
			r, err := Open(dir, ReadOptions{})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer r.Close()
			p := r.Parts()[1]
			if len(p.Labels()) != 6 || len(p.Views()) != 6 || len(p.Row(5, nil)) != 8 {
				t.Fatal("training's columns of the damaged part")
			}
			if err := r.Parts()[0].CheckCaptions(); err != nil {
				t.Fatalf("the sound part: %v", err)
			}
			err = tc.check(p)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "train.b") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check: %v", err)
			}
			func() {
				defer func() {
					if e, _ := recover().(error); !errors.Is(e, ErrCorrupt) {
						t.Errorf("the guarded accessor did not panic with the check's error: %v", e)
					}
				}()
				tc.use(p)
			}()
			rep, err := Verify(dir, VerifyOptions{})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(strings.Join(rep.Problems, "\n"), tc.want) {
				t.Errorf("verify: %+v %v", rep, err)
			}
			if _, err := BuildIndex(dir, IndexOptions{}); tc.name == "key bytes" && !errors.Is(err, ErrCorrupt) {
				t.Errorf("index over a damaged key column: %v", err)
			}
		})
	}
}

// TestCaptionsShared: parts holding the same caption share one copy of it,
// and it stays valid after Close.
func TestCaptionsShared(t *testing.T) {
	dir := t.TempDir()
	c, err := Create(dir, testManifest(4, Float32, 1))
	if err != nil {
		t.Fatal(err)
	}
	fillPart(t, c, "train", "a.tar", 30, 1, nil)
	fillPart(t, c, "train", "b.tar", 30, 2, nil)
	r, err := Open(dir, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := r.Parts()[0], r.Parts()[1]
	byText := map[string]*byte{}
	for _, s := range a.Captions() {
		byText[s] = unsafe.StringData(s)
	}
	shared := 0
	for _, s := range b.Captions() {
		if d, ok := byText[s]; ok {
			if d != unsafe.StringData(s) {
				t.Fatalf("caption %q copied twice", s)
			}
			shared++
		}
	}
	if shared == 0 {
		t.Fatal("the parts share no caption: the test shows nothing")
	}
	got := a.Caption(0)
	r.Close()
	if !strings.HasPrefix(got, "a photo of species ") {
		t.Errorf("caption after Close: %q", got)
	}
}

// TestOpenFirstError: with several bad parts, opened in parallel, Open
// reports the first one's error every time.
func TestOpenFirstError(t *testing.T) {
	dir := t.TempDir()
	c, err := Create(dir, testManifest(4, Float32, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a.tar", "b.tar", "c.tar", "d.tar"} {
		fillPart(t, c, "train", s, 3, 1, nil)
	}
	for _, n := range []string{"train.b", "train.d"} {
		os.Truncate(partPath(dir, n), 10)
	}
	for i := 0; i < 10; i++ {
		_, err := Open(dir, ReadOptions{Workers: 4})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "train.b") {
			t.Fatalf("open %d: %v", i, err)
		}
	}
}
