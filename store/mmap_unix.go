//go:build unix

package store

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// mapFile maps path read-only; unmap releases it.
func mapFile(path string) (data []byte, unmap func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() == 0 {
		return nil, nil, fmt.Errorf("%s: empty file", path)
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	// No read-around: a fault reads its own page. Readers ask for what they
	// scan (Part.prefetch, Part.Advise); the kernel's default read-around
	// (read_ahead_kb, 8 MB on the project's machines) made the first page of
	// every part pull in most of the file when a cache was opened cold.
	_ = unix.Madvise(data, unix.MADV_RANDOM)
	return data, func() error { return syscall.Munmap(data) }, nil
}

// adviseRange applies a to b, a page-aligned range of a mapping.
func adviseRange(b []byte, a Advice) error {
	adv := unix.MADV_NORMAL
	switch a {
	case AdviseRandom:
		adv = unix.MADV_RANDOM
	case AdviseSequential:
		adv = unix.MADV_SEQUENTIAL
	case AdviseWillNeed:
		adv = unix.MADV_WILLNEED
	}
	return unix.Madvise(b, adv)
}

func pageSize() int { return os.Getpagesize() }
