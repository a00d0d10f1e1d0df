//go:build !unix

package store

import "os"

// mapFile reads path into memory where mmap is not available.
func mapFile(path string) (data []byte, unmap func() error, err error) {
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}

// adviseRange does nothing: the part was read into memory.
func adviseRange(b []byte, a Advice) error { return nil }

func pageSize() int { return os.Getpagesize() }
