// Package store is the embedding cache (DESIGN.md decisions 4 and 9): a
// directory holding manifest.json, one Arrow IPC part per input shard under
// parts/, a done/ marker per finished part, per-shard rejects under
// rejects/, lock files under locks/ and a Badger index key → (part, row)
// under index/.
//
//	CACHE/manifest.json          schema version, image-tower fingerprint, dim, dtype, views, producer, counts
//	CACHE/parts/NAME.arrow       key utf8, label int32, view uint8, caption dict<int32,utf8>, emb FixedSizeList<float16|float32>[D];
//	                             schema metadata litcache.fingerprint, litcache.producer, litcache.part (PartMeta JSON)
//	CACHE/done/NAME.json         marker: counts, part size and sha256, source shard (path, size, hash), fingerprint,
//	                             producer, damage (written last, by atomic rename)
//	CACHE/rejects/NAME.jsonl     one line per rejected sample or member of that shard, and one for its damage
//	CACHE/rejects.jsonl          all rejects, gathered by Finalize (end of extract, `cache index`)
//	CACHE/locks/NAME.lock        flock of a part being made (gone when released; dropped by the kernel on a crash)
//	CACHE/index/                 Badger: key → (part, first row, views)
//
// A part counts only once its marker exists; a marker is written after its
// part and rejects file are synced and renamed into place. So a run killed at
// any point resumes by redoing exactly the shards without a marker. Each
// worker writes only the parts it owns (shard i goes to worker i mod n).
// The manifest is written with the first committed part (bind.go), and every
// marker repeats its identity, so a lost manifest is rebuilt from them.
//
// Letters: N rows of a part, D embedding dim.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// SchemaVersion is the cache layout version written into manifest.json.
const SchemaVersion = 1

// DType names the element type of stored embeddings.
const (
	Float16 = "float16"
	Float32 = "float32"
)

// Manifest is manifest.json. The identity fields (fingerprint, dim, dtype,
// views) are fixed when the cache is created; the counts are refreshed from
// the done/ markers by Finalize.
type Manifest struct {
	SchemaVersion int `json:"schema_version"`
	// Fingerprint identifies the image tower and preprocessing that made the
	// embeddings; readers refuse a cache whose fingerprint is not the expected one.
	Fingerprint string `json:"fingerprint"`
	// Model describes the tower in words (config name, weights file, preprocessing).
	Model string `json:"model"`
	// Tower says where the image tower came from, so that a tuned text
	// tower can be written out with it as one full model (tune's final/).
	// Caches made before it was recorded have none.
	Tower *TowerSource `json:"tower,omitempty"`
	// Dim is the embedding width D.
	Dim int `json:"dim"`
	// DType is "float16" or "float32".
	DType string `json:"dtype"`
	// Views is the number of rows per image: view 0 is the eval transform,
	// views 1..Views-1 random resized crops.
	Views int `json:"views"`
	// Normalized tells whether embeddings were L2-normalised before storing.
	Normalized bool `json:"normalized"`
	// Producer made the cache's first part: the backend, precision and
	// JPEG decoder that every part must share unless its writer was allowed
	// to mix (see Producer).
	Producer Producer `json:"producer"`
	// Created is when the cache was first created (RFC 3339).
	Created string `json:"created"`
	// Splits sums the markers per split (refreshed by Finalize).
	Splits map[string]SplitCounts `json:"splits,omitempty"`
	// Shards lists each finished part (refreshed by Finalize).
	Shards []ShardCounts `json:"shards,omitempty"`
	// Producers counts the parts and rows of each producer (refreshed by
	// Finalize); more than one means a mixed cache.
	Producers []ProducerCount `json:"producers,omitempty"`
	// Rows, Samples and Rejects are totals over all finished parts.
	Rows    int `json:"rows"`
	Samples int `json:"samples"`
	Rejects int `json:"rejects"`
}

// TowerSource is where a cache's image tower came from: enough to load or
// regenerate it. It is not part of the cache's identity (the fingerprint
// is): workers on other machines may read the same weights from other paths.
type TowerSource struct {
	// Family is the tower's family (internal/tower: clip, dinov2, swin);
	// "" in caches recorded before other families: clip.
	Family string `json:"family,omitempty"`
	// Config is the family's model config JSON: for CLIP the OpenCLIP
	// model_cfg whose vision_cfg is the tower.
	Config json.RawMessage `json:"config"`
	// Weights is the weights file as the first worker read it (an absolute
	// path), or random:SEED for a random initialisation.
	Weights string `json:"weights"`
	// Pool is the tower's pooling (internal/tower: CLIP's one is cls; "" in older records).
	Pool string `json:"pool,omitempty"`
}

// SplitCounts are the totals of one split.
type SplitCounts struct {
	Shards  int `json:"shards"`
	Samples int `json:"samples"`
	Rows    int `json:"rows"`
	Rejects int `json:"rejects"`
}

// ShardCounts are the counts of one finished part.
type ShardCounts struct {
	Part    string `json:"part"`
	Split   string `json:"split"`
	Shard   string `json:"shard"`
	Samples int    `json:"samples"`
	Rows    int    `json:"rows"`
	Rejects int    `json:"rejects"`
}

// Validate checks the identity fields.
func (m Manifest) Validate() error {
	if m.SchemaVersion != SchemaVersion {
		return fmt.Errorf("store: manifest: schema version %d, this build reads %d: %w", m.SchemaVersion, SchemaVersion, ErrIncompatible)
	}
	if m.Fingerprint == "" {
		return fmt.Errorf("store: manifest: empty fingerprint: %w", ErrCorrupt)
	}
	if m.Dim <= 0 {
		return fmt.Errorf("store: manifest: dim %d: %w", m.Dim, ErrCorrupt)
	}
	if m.DType != Float16 && m.DType != Float32 {
		return fmt.Errorf("store: manifest: dtype %q (want float16 or float32): %w", m.DType, ErrCorrupt)
	}
	if m.Views < 1 || m.Views > 255 {
		return fmt.Errorf("store: manifest: views %d (want 1..255): %w", m.Views, ErrCorrupt)
	}
	return nil
}

// compatible reports why an existing cache cannot take rows made as want.
func (m Manifest) compatible(want Manifest) error {
	if m.Fingerprint != want.Fingerprint {
		return fmt.Errorf("store: cache made by image tower %s, this run's is %s: %w", m.Fingerprint, want.Fingerprint, ErrFingerprint)
	}
	if m.Dim != want.Dim || m.DType != want.DType || m.Views != want.Views || m.Normalized != want.Normalized {
		return fmt.Errorf("store: cache holds dim %d %s views %d normalized %v, this run writes dim %d %s views %d normalized %v: %w",
			m.Dim, m.DType, m.Views, m.Normalized, want.Dim, want.DType, want.Views, want.Normalized, ErrIncompatible)
	}
	return nil
}

// ReadManifest reads DIR/manifest.json.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if errors.Is(err, fs.ErrNotExist) {
		if mks, _ := filepath.Glob(filepath.Join(dir, "done", "*.json")); len(mks) > 0 {
			return m, fmt.Errorf("store: %s: manifest.json is missing, but %d parts are done: `litcache cache index %s` rebuilds it from their markers: %w", dir, len(mks), dir, ErrNotCache)
		}
		return m, fmt.Errorf("store: %s: %w", dir, ErrNotCache)
	}
	if err != nil {
		return m, fmt.Errorf("store: manifest: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("store: manifest %s: %v: %w", dir, err, ErrCorrupt)
	}
	if err := m.Validate(); err != nil {
		return m, err
	}
	return m, nil
}

// writeManifest replaces DIR/manifest.json atomically.
func writeManifest(dir string, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("store: manifest: %w", err)
	}
	return atomicWrite(dir, "manifest.json", b)
}

// Finalize refreshes manifest.json's counts from the done/ markers and
// gathers rejects/*.jsonl into rejects.jsonl. It is safe to run at any time
// (the extract stage calls it at its end, `cache index` before indexing);
// parts still being written are not counted. A lost manifest is rebuilt
// from the markers; a folder with neither is ErrNotCache.
func Finalize(dir string) (Manifest, error) {
	lk, err := lockManifest(dir)
	if err != nil {
		return Manifest{}, err
	}
	defer lk.Unlock()
	st, err := readState(dir)
	if err != nil {
		return st.m, err
	}
	if !st.haveManifest && len(st.markers) == 0 {
		return st.m, fmt.Errorf("store: %s: %w", dir, ErrNotCache)
	}
	m := st.m
	m.Splits = map[string]SplitCounts{}
	m.Shards = m.Shards[:0]
	m.Rows, m.Samples, m.Rejects = 0, 0, 0
	var rej strings.Builder
	for _, mk := range st.markers {
		s := m.Splits[mk.Split]
		s.Shards++
		s.Samples += mk.Samples
		s.Rows += mk.Rows
		s.Rejects += mk.Rejects
		m.Splits[mk.Split] = s
		m.Shards = append(m.Shards, ShardCounts{Part: mk.Name, Split: mk.Split, Shard: mk.Shard, Samples: mk.Samples, Rows: mk.Rows, Rejects: mk.Rejects})
		m.Rows += mk.Rows
		m.Samples += mk.Samples
		m.Rejects += mk.Rejects
		if mk.RejectLines() > 0 {
			b, err := os.ReadFile(filepath.Join(dir, "rejects", mk.Name+".jsonl"))
			if err != nil {
				return m, fmt.Errorf("store: rejects of part %s: %w", mk.Name, err)
			}
			rej.Write(b)
		}
	}
	m.Producers = countProducers(st.markers)
	sort.Slice(m.Shards, func(i, j int) bool { return m.Shards[i].Part < m.Shards[j].Part })
	if err := atomicWrite(dir, "rejects.jsonl", []byte(rej.String())); err != nil {
		return m, err
	}
	return m, writeManifest(dir, m)
}

// countProducers sums the parts and rows of each producer, in the order of
// their first commit.
func countProducers(markers []Marker) []ProducerCount {
	byTime := append([]Marker(nil), markers...)
	sort.SliceStable(byTime, func(i, j int) bool { return byTime[i].Committed < byTime[j].Committed })
	var out []ProducerCount
	at := map[string]int{}
	for _, mk := range byTime {
		k := mk.Producer.Key()
		if !mk.Producer.Known() {
			k = ""
		}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, ProducerCount{Producer: mk.Producer})
		}
		out[i].Parts++
		out[i].Rows += mk.Rows
	}
	return out
}
