package store

import (
	"fmt"
	"unsafe"
)

// Advice tells the kernel how a part's embeddings will be read
// (madvise(2) on their pages; a no-op where mmap is not used).
type Advice int

const (
	// AdviseNormal is the kernel's default: read ahead around each fault.
	AdviseNormal Advice = iota
	// AdviseRandom turns read-ahead off: a random row reads only its own
	// pages. Without it a 1.5 KB float16 row of a 768-d cache pulled about
	// 47 KB of neighbouring pages into the page cache (issue 15).
	AdviseRandom
	// AdviseSequential reads ahead aggressively and lets pages behind the
	// reader go early (a scan: verify, export).
	AdviseSequential
	// AdviseWillNeed starts reading every page now, in the background (a
	// part whose rows are all about to be read in some order).
	AdviseWillNeed
)

// Advise tells the kernel how the part's embedding pages will be read.
// Open applies ReadOptions.Access; a reader that changes its pattern
// (a scan over a part, the rows of a block about to be read) says so here.
func (p *Part) Advise(a Advice) error {
	if err := p.advise(p.emb, a); err != nil {
		return fmt.Errorf("store: part %s: madvise: %w", p.Name, err)
	}
	return nil
}

// advise applies a to the pages holding b, a slice of the mapping.
func (p *Part) advise(b []byte, a Advice) error {
	if len(b) == 0 || len(p.data) == 0 {
		return nil
	}
	// madvise wants a page-aligned start; the mapping's start is one.
	base := uintptr(unsafe.Pointer(&p.data[0]))
	off := int(uintptr(unsafe.Pointer(&b[0])) - base)
	if off < 0 || off+len(b) > len(p.data) {
		return nil // not in the mapping (a part read into memory)
	}
	page := pageSize()
	lo := off / page * page
	return adviseRange(p.data[lo:off+len(b)], a)
}

// prefetch starts reading the pages of b, a column about to be scanned, in
// large reads (the mapping reads no more than a faulting page otherwise).
func (p *Part) prefetch(b ...[]byte) {
	for _, x := range b {
		_ = p.advise(x, AdviseWillNeed)
	}
}
