package wds

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/litcache/litcache/internal/atomicfile"
)

// memberTime is every member's modification time: fixed, so that the same
// samples always give the same shard bytes (a resumed run's shards are
// identical to an uninterrupted one's).
var memberTime = time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)

// Writer writes one shard. Its bytes go to PATH.tmp; Close finishes the tar,
// syncs and renames it to PATH, so a shard is complete or absent.
type Writer struct {
	path, tmp string
	f         *os.File
	bw        *bufio.Writer
	zw        io.WriteCloser // compressor, nil for .tar
	tw        *tar.Writer
	keys      map[string]bool
	count     int
	bytes     int64
	closed    bool
}

// Create starts a shard at path; the compression follows the name
// (CompressionOf). An old PATH.tmp is replaced.
func Create(path string) (*Writer, error) {
	comp, err := CompressionOf(path)
	if err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("wds: %w", err)
	}
	w := &Writer{path: path, tmp: tmp, f: f, bw: bufio.NewWriterSize(f, 1<<20), keys: map[string]bool{}}
	var out io.Writer = w.bw
	switch comp {
	case Gzip:
		w.zw = gzip.NewWriter(w.bw)
		out = w.zw
	case Zstd:
		zw, err := zstd.NewWriter(w.bw, zstd.WithEncoderConcurrency(1))
		if err != nil {
			f.Close()
			os.Remove(tmp)
			return nil, fmt.Errorf("wds: %s: %w", path, err)
		}
		w.zw = zw
		out = zw
	}
	w.tw = tar.NewWriter(out)
	return w, nil
}

// Path is the shard's final path.
func (w *Writer) Path() string { return w.path }

// Count is the number of samples written.
func (w *Writer) Count() int { return w.count }

// Bytes is the size of the uncompressed tar written so far.
func (w *Writer) Bytes() int64 { return w.bytes }

// TarSize is the number of uncompressed tar bytes a sample adds: a 512-byte
// header per member plus its data padded to 512 bytes.
func TarSize(s *Sample) int64 {
	var n int64
	for _, d := range s.Files {
		n += 512 + (int64(len(d))+511)/512*512
	}
	return n
}

// Write appends a sample, its members in sorted extension order. Keys must
// be unique within the shard and pass CheckKey; extensions pass CheckExt.
func (w *Writer) Write(s *Sample) error {
	if w.closed {
		return fmt.Errorf("wds: %s: write after close", w.path)
	}
	if err := CheckKey(s.Key); err != nil {
		return fmt.Errorf("wds: %s: %w", w.path, err)
	}
	if w.keys[s.Key] {
		return fmt.Errorf("wds: %s: key %q written twice", w.path, s.Key)
	}
	if len(s.Files) == 0 {
		return fmt.Errorf("wds: %s: sample %q has no files", w.path, s.Key)
	}
	exts := make([]string, 0, len(s.Files))
	for ext := range s.Files {
		if err := CheckExt(ext); err != nil {
			return fmt.Errorf("wds: %s: sample %q: %w", w.path, s.Key, err)
		}
		exts = append(exts, ext)
	}
	sort.Strings(exts)
	for _, ext := range exts {
		data := s.Files[ext]
		name := s.Key + "." + ext
		if err := CheckName(name); err != nil {
			return fmt.Errorf("wds: %s: %w", w.path, err)
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: memberTime}
		if err := w.tw.WriteHeader(h); err != nil {
			return fmt.Errorf("wds: %s: %w", w.path, err)
		}
		if _, err := w.tw.Write(data); err != nil {
			return fmt.Errorf("wds: %s: %w", w.path, err)
		}
	}
	w.keys[s.Key] = true
	w.count++
	w.bytes += TarSize(s)
	return nil
}

// Close finishes the shard: tar trailer, compressor, flush, fsync, rename
// PATH.tmp → PATH, fsync of the folder.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.tw.Close()
	if w.zw != nil && err == nil {
		err = w.zw.Close()
	}
	if err == nil {
		err = w.bw.Flush()
	}
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.tmp, w.path)
	}
	if err != nil {
		os.Remove(w.tmp)
		return fmt.Errorf("wds: %s: %w", w.path, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(w.path)); err != nil {
		return fmt.Errorf("wds: %w", err)
	}
	return nil
}

// Abort drops the shard: PATH.tmp is removed and PATH is never created.
func (w *Writer) Abort() error {
	if w.closed {
		return nil
	}
	w.closed = true
	w.f.Close()
	if err := os.Remove(w.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("wds: %w", err)
	}
	return nil
}

// SizesFile is the name of the per-folder sample counts OpenCLIP reads.
const SizesFile = "sizes.json"

// ReadSizes reads DIR/sizes.json ({shard name: sample count}); a missing file
// gives an empty map.
func ReadSizes(dir string) (map[string]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, SizesFile))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wds: %w", err)
	}
	sizes := map[string]int{}
	if err := json.Unmarshal(b, &sizes); err != nil {
		return nil, fmt.Errorf("wds: %s: %w", filepath.Join(dir, SizesFile), err)
	}
	return sizes, nil
}

// WriteSizes replaces DIR/sizes.json atomically with sizes (keys sorted).
func WriteSizes(dir string, sizes map[string]int) error {
	b, err := json.MarshalIndent(sizes, "", " ")
	if err != nil {
		return fmt.Errorf("wds: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, SizesFile), append(b, '\n')); err != nil {
		return fmt.Errorf("wds: %w", err)
	}
	return nil
}

// UpdateSizes merges counts into DIR/sizes.json (other shards' entries kept).
func UpdateSizes(dir string, counts map[string]int) error {
	sizes, err := ReadSizes(dir)
	if err != nil {
		return err
	}
	for k, v := range counts {
		sizes[k] = v
	}
	return WriteSizes(dir, sizes)
}
