package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Locks. A part being made is locked (locks/NAME.lock), so that two
// processes given the same shards never both make it: the second skips it.
// The manifest has a lock too (locks/.manifest.lock), held while the first
// part's commit writes the manifest and its marker, and while Finalize
// refreshes the counts.
//
// The locks are flock(2) locks on those files (lock_flock.go). The kernel
// drops them when the process ends in any way (SIGKILL, OOM, a crash), so a
// crash never leaves a shard locked and no one has to judge whether a lock
// is stale. A pid file checked for liveness would only work on one machine:
// the workers of a SLURM array or an indexed Job run on many, sharing the
// cache over NFS or Lustre, where a remote pid cannot be probed; flock
// works there (Linux NFS clients map it to NFS byte-range locks, released
// when the client's lease lapses; Lustre needs its flock mount option).
// A lock file says who holds it (pid, host, since when), for the message of
// the process that finds it taken.

// Lock is a held lock; Unlock releases it.
type Lock struct {
	f    *os.File
	path string
}

// Unlock releases the lock and removes its file. Safe to call twice.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Remove first, then close (which drops the lock): a process that opened
	// the file before the removal finds, once it gets the lock, that the
	// path names another file or none, and starts over (lockFile).
	err := os.Remove(l.path)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if os.IsNotExist(err) {
		err = nil
	}
	return err
}

func lockDir(dir string) string { return filepath.Join(dir, "locks") }

func partLockPath(dir, name string) string { return filepath.Join(lockDir(dir), name+".lock") }

func manifestLockPath(dir string) string { return filepath.Join(lockDir(dir), ".manifest.lock") }

// holder is what a lock file says about its holder.
func holder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("pid %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
}

// heldBy reads who holds the lock at path, for messages.
func heldBy(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return "another process"
	}
	return strings.TrimSpace(string(b))
}

// TryLock takes part NAME's lock without waiting. When another process
// holds it the error wraps ErrLocked and says who holds it.
func (c *Cache) TryLock(name string) (*Lock, error) {
	if err := os.MkdirAll(lockDir(c.dir), 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	path := partLockPath(c.dir, name)
	l, err := lockFile(path, false)
	if err == errBusy {
		return nil, fmt.Errorf("store: part %s is being made by %s: %w", name, heldBy(path), ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: lock of part %s: %w", name, err)
	}
	return l, nil
}

// lockManifest takes the manifest's lock, waiting for it.
func lockManifest(dir string) (*Lock, error) {
	if err := os.MkdirAll(lockDir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	l, err := lockFile(manifestLockPath(dir), true)
	if err != nil {
		return nil, fmt.Errorf("store: manifest lock: %w", err)
	}
	return l, nil
}
