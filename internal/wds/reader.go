package wds

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Sample is one webdataset sample: a key and its files by extension without
// the dot ("jpg", "txt", "json", "cls", or longer ones such as "seg.png").
type Sample struct {
	Key   string
	Files map[string][]byte
}

// Compression is a shard's compression, chosen by its file name.
type Compression int

// The compressions a shard may have.
const (
	None Compression = iota // .tar
	Gzip                    // .tar.gz, .tgz
	Zstd                    // .tar.zst, .tzst
)

// CompressionOf returns the compression a shard name implies and an error for
// a name that is not a tar shard.
func CompressionOf(name string) (Compression, error) {
	switch {
	case strings.HasSuffix(name, ".tar"):
		return None, nil
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		return Gzip, nil
	case strings.HasSuffix(name, ".tar.zst"), strings.HasSuffix(name, ".tzst"):
		return Zstd, nil
	}
	return None, fmt.Errorf("wds: %s: not a shard name (want .tar, .tar.gz or .tar.zst)", name)
}

// Ext is the file name suffix of a compression: ".tar", ".tar.gz" or ".tar.zst".
func (c Compression) Ext() string {
	switch c {
	case Gzip:
		return ".tar.gz"
	case Zstd:
		return ".tar.zst"
	}
	return ".tar"
}

// DefaultMaxMemberSize bounds one member's size so that a corrupt header
// cannot make the reader allocate without limit.
const DefaultMaxMemberSize = 1 << 30

// Reader streams the samples of one shard.
type Reader struct {
	name    string
	closers []io.Closer
	tr      *tar.Reader
	cr      *countingReader
	dataEnd int64   // stream offset after the last good member's padded data
	pending *member // first member of the next sample
	skipped []error // *MemberErrors met inside the sample being returned, reported after it
	err     error   // sticky: io.EOF or a *DamageError
	maxSize int64
	n       int    // samples returned
	last    string // key of the last sample returned
	shape   string // extensions of the last sample returned, sorted
}

// NewReader opens a shard file; the compression follows its name.
func NewReader(path string) (*Reader, error) {
	comp, err := CompressionOf(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("wds: %w", err)
	}
	r, err := NewStreamReader(bufio.NewReaderSize(f, 1<<20), path, comp)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closers = append(r.closers, f)
	return r, nil
}

// NewStreamReader reads a shard from a stream (e.g. an HTTP body); name is
// used in errors.
func NewStreamReader(in io.Reader, name string, comp Compression) (*Reader, error) {
	r := &Reader{name: name, maxSize: DefaultMaxMemberSize}
	switch comp {
	case Gzip:
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, &DamageError{Shard: name, Err: err}
		}
		r.closers = append(r.closers, zr)
		in = zr
	case Zstd:
		zr, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(4<<30))
		if err != nil {
			return nil, fmt.Errorf("wds: %s: %w", name, err)
		}
		r.closers = append(r.closers, closerFunc(func() error { zr.Close(); return nil }))
		in = zr
	}
	r.cr = &countingReader{r: in}
	r.tr = tar.NewReader(r.cr)
	return r, nil
}

// countingReader counts the tar stream's bytes so that a shard cut at a
// block boundary (which archive/tar reports as a clean end) is caught.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// SetMaxMemberSize changes the largest member accepted (DefaultMaxMemberSize).
func (r *Reader) SetMaxMemberSize(n int64) { r.maxSize = n }

// Close releases the shard.
func (r *Reader) Close() error {
	var first error
	for i := len(r.closers) - 1; i >= 0; i-- {
		if err := r.closers[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	r.closers = nil
	return first
}

// ReadAll returns every sample of a shard file.
func ReadAll(path string) ([]*Sample, error) {
	r, err := NewReader(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []*Sample
	for {
		s, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
}
