package store

import (
	"os"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident counts the pages of b (page-aligned) in the page cache.
func resident(t *testing.T, b []byte) int {
	t.Helper()
	page := os.Getpagesize()
	vec := make([]byte, (len(b)+page-1)/page)
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestAdviseRandom: with AdviseRandom, reading one row of a part whose pages
// were dropped from the page cache brings in only that row's pages; with the
// default advice the kernel reads ahead around it. The default is the
// control: where it reads no more than the row either (tmpfs, no
// read-ahead), the test says so and stops.
func TestAdviseRandom(t *testing.T) {
	dir := t.TempDir()
	c, err := Create(dir, testManifest(768, Float16, 1))
	if err != nil {
		t.Fatal(err)
	}
	fillPart(t, c, "train", "a.tar", 4000, 1, nil) // 6 MB of embeddings
	path := partPath(dir, "train.a")
	touched := map[Advice]int{}
	for _, adv := range []Advice{AdviseNormal, AdviseRandom} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		unix.Fdatasync(int(f.Fd()))
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		f.Close()
		r, err := Open(dir, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p := r.Parts()[0]
		if err := p.Advise(adv); err != nil {
			t.Fatal(err)
		}
		// A row in the middle, far from the metadata the open read. Pages
		// within 1 MB of it: read-ahead windows are at most that.
		row := 2000
		page := os.Getpagesize()
		at := int(uintptr(unsafe.Pointer(&p.f16[row*768])) - uintptr(unsafe.Pointer(&p.data[0])))
		lo, hi := (at-(1<<20))/page*page, min(at+(1<<20), len(p.data))
		if n := resident(t, p.data[lo:hi]); n > 0 {
			t.Fatalf("%d pages around the row resident before it was read: opening read embeddings", n)
		}
		_ = p.Row(row, nil)
		touched[adv] = resident(t, p.data[lo:hi])
		r.Close()
	}
	t.Logf("pages resident around one 1.5 KB row: default %d, random %d", touched[AdviseNormal], touched[AdviseRandom])
	if touched[AdviseNormal] <= 2 {
		t.Skipf("no read-ahead on this filesystem (default advice read %d pages): nothing to compare", touched[AdviseNormal])
	}
	if touched[AdviseRandom] > 2 {
		t.Errorf("AdviseRandom: reading one row brought %d pages into the page cache, want ≤ 2", touched[AdviseRandom])
	}
}
