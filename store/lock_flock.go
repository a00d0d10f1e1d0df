//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package store

import (
	"errors"
	"os"
	"syscall"
)

// errBusy: the lock is held by another process.
var errBusy = errors.New("lock busy")

// lockFile takes an exclusive flock on path, creating the file; wait says
// whether to wait for it or fail with errBusy.
func lockFile(path string, wait bool) (*Lock, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		how := syscall.LOCK_EX
		if !wait {
			how |= syscall.LOCK_NB
		}
		for {
			err = syscall.Flock(int(f.Fd()), how)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, errBusy
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		// The holder before us may have removed the file after we opened it
		// (Unlock): then we hold a lock on a file no one else will open.
		if same, err := samePath(f, path); err != nil || !same {
			f.Close()
			if err != nil && !os.IsNotExist(err) {
				return nil, err
			}
			continue
		}
		f.Truncate(0)
		f.WriteAt([]byte(holder()), 0)
		return &Lock{f: f, path: path}, nil
	}
}

// samePath tells whether the open file f is still the file at path.
func samePath(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}
