package store

import (
	"fmt"
	"os"
	"path/filepath"
)

// atomicWrite puts data at DIR/NAME so that a reader sees either the old
// file or the whole new one, and a crash leaves no half file: write a private
// temp file, fsync it, rename it over NAME, fsync the directory.
func atomicWrite(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+"-*.tmp")
	if err != nil {
		return fmt.Errorf("store: %s: %w", name, err)
	}
	if err := writeSync(tmp, data); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("store: %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("store: %s: %w", name, err)
	}
	return syncDir(filepath.Join(dir, filepath.Dir(name)))
}

// writeSync writes data to f, fsyncs and closes it.
func writeSync(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir fsyncs a directory so that renames and creations in it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync %s: %w", dir, err)
	}
	return nil
}
