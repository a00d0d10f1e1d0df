package store

import (
	"fmt"
	"path/filepath"

	"github.com/litcache/litcache/internal/atomicfile"
)

// atomicWrite puts data at DIR/NAME so that a reader sees either the old
// file or the whole new one, and a crash leaves no half file.
func atomicWrite(dir, name string, data []byte) error {
	if err := atomicfile.WriteFile(filepath.Join(dir, name), data); err != nil {
		return fmt.Errorf("store: %s: %w", name, err)
	}
	return nil
}

// syncDir fsyncs a directory so that renames and creations in it survive a crash.
func syncDir(dir string) error {
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
