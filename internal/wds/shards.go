package wds

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ShardOptions configure a ShardWriter.
type ShardOptions struct {
	Dir string // output folder, created when missing
	// Name formats a shard's file name from its index; "%06d" + the
	// compression's extension by default (000000.tar, 000001.tar, …).
	Name        string
	Compression Compression
	MaxCount    int   // samples per shard; 0 = no limit
	MaxBytes    int64 // uncompressed tar bytes per shard; 0 = no limit
	Start       int   // index of the first shard
}

// ShardInfo describes one finished shard.
type ShardInfo struct {
	Name  string // file name within Dir
	Count int
	Bytes int64 // uncompressed tar bytes
}

// ShardWriter writes samples into a numbered series of shards, starting a new
// one when the next sample would pass MaxCount or MaxBytes. Each shard is
// complete or absent (Writer); Close records the counts in sizes.json.
type ShardWriter struct {
	opt    ShardOptions
	next   int
	cur    *Writer
	shards []ShardInfo
}

// NewShardWriter starts a shard series.
func NewShardWriter(opt ShardOptions) (*ShardWriter, error) {
	if opt.Dir == "" {
		return nil, fmt.Errorf("wds: shard writer: no output folder")
	}
	if opt.MaxCount < 0 || opt.MaxBytes < 0 {
		return nil, fmt.Errorf("wds: shard writer: negative limits %d samples, %d bytes", opt.MaxCount, opt.MaxBytes)
	}
	if opt.Name == "" {
		opt.Name = "%06d" + opt.Compression.Ext()
	}
	if !strings.Contains(opt.Name, "%") {
		return nil, fmt.Errorf("wds: shard writer: name %q has no %%d verb for the shard index", opt.Name)
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("wds: %w", err)
	}
	return &ShardWriter{opt: opt, next: opt.Start}, nil
}

// Write adds a sample, rotating to a new shard first when needed.
func (s *ShardWriter) Write(sample *Sample) error {
	if s.cur != nil && s.cur.Count() > 0 {
		full := s.opt.MaxCount > 0 && s.cur.Count() >= s.opt.MaxCount
		full = full || s.opt.MaxBytes > 0 && s.cur.Bytes()+TarSize(sample) > s.opt.MaxBytes
		if full {
			if err := s.finish(); err != nil {
				return err
			}
		}
	}
	if s.cur == nil {
		name := fmt.Sprintf(s.opt.Name, s.next)
		w, err := Create(filepath.Join(s.opt.Dir, name))
		if err != nil {
			return err
		}
		s.cur = w
		s.next++
	}
	return s.cur.Write(sample)
}

func (s *ShardWriter) finish() error {
	w := s.cur
	s.cur = nil
	if err := w.Close(); err != nil {
		return err
	}
	s.shards = append(s.shards, ShardInfo{Name: filepath.Base(w.Path()), Count: w.Count(), Bytes: w.Bytes()})
	return nil
}

// Shards lists the shards finished so far.
func (s *ShardWriter) Shards() []ShardInfo { return append([]ShardInfo(nil), s.shards...) }

// Close finishes the last shard and merges the counts into sizes.json.
func (s *ShardWriter) Close() error {
	if s.cur != nil {
		if err := s.finish(); err != nil {
			return err
		}
	}
	counts := map[string]int{}
	for _, sh := range s.shards {
		counts[sh.Name] = sh.Count
	}
	return UpdateSizes(s.opt.Dir, counts)
}

// Abort drops the shard being written; finished shards stay.
func (s *ShardWriter) Abort() error {
	if s.cur == nil {
		return nil
	}
	w := s.cur
	s.cur = nil
	return w.Abort()
}
