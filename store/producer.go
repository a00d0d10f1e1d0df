package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Producer is what computed a part's rows beyond the image tower itself
// (DESIGN.md decision 9). The same tower and weights give rows that differ
// past rounding on another backend precision (CPU float32 against GPU bf16)
// or another JPEG decoder (libjpeg-turbo against image/jpeg: up to 4 levels
// a pixel), so a cache records it per part and refuses to mix producers
// unseen.
type Producer struct {
	Backend   string `json:"backend"`          // "cpu", "cuda"
	Precision string `json:"precision"`        // "float32", "bf16"
	Decoder   string `json:"decoder"`          // "libjpeg-turbo", "go", "nvjpeg"
	Detail    string `json:"detail,omitempty"` // e.g. the GEMM library or the GPU; shown, not compared
}

// Known tells whether the producer was recorded (caches written before
// producers were recorded have none).
func (p Producer) Known() bool { return p.Backend != "" || p.Precision != "" || p.Decoder != "" }

// Key is what two producers must share for their rows to mix:
// "backend/precision/decoder".
func (p Producer) Key() string { return p.Backend + "/" + p.Precision + "/" + p.Decoder }

// Same tells whether rows of p and o may share a cache without a flag: both
// recorded and equal in backend, precision and decoder, or either unknown.
func (p Producer) Same(o Producer) bool { return !p.Known() || !o.Known() || p.Key() == o.Key() }

func (p Producer) String() string {
	if !p.Known() {
		return "unknown (not recorded)"
	}
	if p.Detail != "" {
		return p.Key() + " (" + p.Detail + ")"
	}
	return p.Key()
}

// ProducerCount is one producer's share of a cache (manifest.json, Verify).
type ProducerCount struct {
	Producer Producer `json:"producer"`
	Parts    int      `json:"parts"`
	Rows     int      `json:"rows"`
}

// Source identifies the input shard a part was made from, so that another
// shard under the same file name is never taken for it (the part name comes
// from the file name alone).
type Source struct {
	// Path is the shard's absolute path when the part was made.
	Path string `json:"path"`
	// Size is the shard's size in bytes.
	Size int64 `json:"size"`
	// Hash is sourceHashKind + the hex sha256 of the size (8 bytes, little
	// endian), the first MiB and the last MiB of the file (the whole file
	// when it is 2 MiB or less): cheap on a 1 GB shard, and a shard
	// re-written with other samples changes its head and its tail.
	Hash string `json:"hash"`
}

const (
	sourceHashKind = "sha256-size-head-tail-1MiB:"
	sourceEnd      = 1 << 20
)

// SourceOf reads path's identity.
func SourceOf(path string) (Source, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Source{}, fmt.Errorf("store: shard %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return Source{}, fmt.Errorf("store: shard %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Source{}, fmt.Errorf("store: shard %s: %w", path, err)
	}
	size := st.Size()
	h := sha256.New()
	binary.Write(h, binary.LittleEndian, size)
	head := min(size, sourceEnd)
	if _, err := io.CopyN(h, f, head); err != nil {
		return Source{}, fmt.Errorf("store: shard %s: %w", path, err)
	}
	if tail := min(size-head, sourceEnd); tail > 0 {
		if _, err := io.Copy(h, io.NewSectionReader(f, size-tail, tail)); err != nil {
			return Source{}, fmt.Errorf("store: shard %s: %w", path, err)
		}
	}
	return Source{Path: abs, Size: size, Hash: sourceHashKind + hex.EncodeToString(h.Sum(nil))}, nil
}

// Known tells whether the identity was recorded (markers written before it
// was have none).
func (s Source) Known() bool { return s.Hash != "" }

// Same tells whether s and o are the same bytes; the path may differ (a
// moved folder of shards is still the same data).
func (s Source) Same(o Source) bool { return s.Size == o.Size && s.Hash == o.Hash }

func (s Source) String() string {
	return fmt.Sprintf("%s (%d bytes, %s…)", s.Path, s.Size, s.Hash[:min(len(s.Hash), len(sourceHashKind)+12)])
}
