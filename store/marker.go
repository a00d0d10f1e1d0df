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

// Marker is done/NAME.json: the proof that part NAME is complete. It is
// written last, after the part and its rejects are synced and renamed. Beside
// the counts it records what made the rows (the manifest's identity fields,
// the producer) and the input shard's identity, so that a lost manifest can
// be rebuilt from the markers, a rerun can tell another shard of the same
// name from this one, and rows of another tower or producer never join the
// cache unseen.
type Marker struct {
	Name    string `json:"name"`    // part name (file parts/NAME.arrow)
	Split   string `json:"split"`   // e.g. "train", "val"
	Shard   string `json:"shard"`   // the input shard it came from, as given
	Samples int    `json:"samples"` // the shard's samples: kept + rejected + Lost
	Rows    int    `json:"rows"`    // rows in the part (kept samples × views)
	Rejects int    `json:"rejects"` // samples not kept: rejected ones and the Lost ones
	Size    int64  `json:"size"`    // bytes of parts/NAME.arrow
	SHA256  string `json:"sha256"`  // of parts/NAME.arrow
	Worker  int    `json:"worker"`
	Workers int    `json:"workers"`

	// Lost is the number of samples a damaged shard never gave (estimated;
	// see Damage), counted in Samples and Rejects.
	Lost int `json:"lost,omitempty"`
	// Damage is how the shard ended early, nil when it was read to its end.
	Damage *Damage `json:"damage,omitempty"`
	// Source is the input shard's identity.
	Source Source `json:"source"`

	// The manifest's identity fields as this part's writer had them.
	Fingerprint string `json:"fingerprint,omitempty"`
	Model       string `json:"model,omitempty"`
	// Tower is where the image tower came from (Manifest.Tower).
	Tower      *TowerSource `json:"tower,omitempty"`
	Dim        int          `json:"dim,omitempty"`
	DType      string       `json:"dtype,omitempty"`
	Views      int          `json:"views,omitempty"`
	Normalized bool         `json:"normalized"`
	// Producer computed the rows; MixedProducersAllowed records that its
	// writer was allowed to add them to a cache of another producer.
	Producer              Producer `json:"producer"`
	MixedProducersAllowed bool     `json:"mixed_producers_allowed,omitempty"`
	// Committed is when the marker was written (RFC 3339, UTC).
	Committed string `json:"committed,omitempty"`
}

// Damage is how an input shard ended early: every complete sample before
// it is in the part, and rejects/NAME.jsonl holds one line for it.
type Damage struct {
	// Offset is the byte of the uncompressed tar stream from which nothing
	// could be read; After is the last sample read whole, Key the sample
	// the damage cut short ("" when it fell between samples).
	Offset int64  `json:"offset"`
	After  string `json:"after,omitempty"`
	Key    string `json:"key,omitempty"`
	// Read is the samples read before the damage, Expected the shard's
	// count by its sizes.json or index (0 when none names it), Lost the
	// samples never read (Expected - Read, or an estimate; see How).
	Read     int    `json:"read"`
	Expected int    `json:"expected,omitempty"`
	Lost     int    `json:"lost"`
	How      string `json:"how"`
	Reason   string `json:"reason"`
}

// RejectLines is the number of lines in the part's rejects file: one per
// rejected sample or member, and one for the damage, if any.
func (mk Marker) RejectLines() int {
	n := mk.Rejects - mk.Lost
	if mk.Damage != nil {
		n++
	}
	return n
}

// identity is the manifest that the marker's writer had.
func (mk Marker) identity() Manifest {
	return Manifest{SchemaVersion: SchemaVersion, Fingerprint: mk.Fingerprint, Model: mk.Model, Tower: mk.Tower, Dim: mk.Dim,
		DType: mk.DType, Views: mk.Views, Normalized: mk.Normalized, Producer: mk.Producer}
}

// partPath, markerPath and rejectsPath name a part's three files.
func partPath(dir, name string) string    { return filepath.Join(dir, "parts", name+".arrow") }
func markerPath(dir, name string) string  { return filepath.Join(dir, "done", name+".json") }
func rejectsPath(dir, name string) string { return filepath.Join(dir, "rejects", name+".jsonl") }

// readMarker reads done/NAME.json; ok is false when there is none.
func readMarker(dir, name string) (Marker, bool, error) {
	var mk Marker
	b, err := os.ReadFile(markerPath(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return mk, false, nil
	}
	if err != nil {
		return mk, false, fmt.Errorf("store: marker %s: %w", name, err)
	}
	if err := json.Unmarshal(b, &mk); err != nil {
		return mk, false, fmt.Errorf("store: marker %s: %v: %w", name, err, ErrCorrupt)
	}
	if mk.Name != name {
		return mk, false, fmt.Errorf("store: marker %s names part %q: %w", name, mk.Name, ErrCorrupt)
	}
	return mk, true, nil
}

// readMarkers reads every done/*.json, sorted by part name.
func readMarkers(dir string) ([]Marker, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "done"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: markers: %w", err)
	}
	var out []Marker
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") {
			continue
		}
		mk, ok, err := readMarker(dir, strings.TrimSuffix(n, ".json"))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, mk)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PartName derives a part's name from its split and input shard path:
// "train" + ".../train-000012.tar.gz" → "train.train-000012". The name is a
// pure function of its inputs, so a resumed run finds the same part again.
func PartName(split, shard string) string {
	base := filepath.Base(shard)
	for _, ext := range []string{".gz", ".zst", ".zstd", ".tgz", ".tar"} {
		base = strings.TrimSuffix(base, ext)
	}
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
				return r
			}
			return '_'
		}, s)
	}
	if split == "" {
		split = "all"
	}
	return clean(split) + "." + clean(base)
}
