//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import (
	"errors"
	"os"
	"time"
)

// errBusy: the lock is held by another process.
var errBusy = errors.New("lock busy")

// lockFile creates path exclusively. Without flock(2) a crashed holder's
// file stays: the ErrLocked message names its holder, and removing the file
// by hand releases it.
func lockFile(path string, wait bool) (*Lock, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			f.WriteAt([]byte(holder()), 0)
			return &Lock{f: f, path: path}, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		if !wait {
			return nil, errBusy
		}
		time.Sleep(50 * time.Millisecond)
	}
}
