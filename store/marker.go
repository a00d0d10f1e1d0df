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
// written last, after the part and its rejects are synced and renamed.
type Marker struct {
	Name    string `json:"name"`    // part name (file parts/NAME.arrow)
	Split   string `json:"split"`   // e.g. "train", "val"
	Shard   string `json:"shard"`   // the input shard it came from
	Samples int    `json:"samples"` // samples read from the shard (kept + rejected)
	Rows    int    `json:"rows"`    // rows in the part (kept samples × views)
	Rejects int    `json:"rejects"` // samples rejected
	Size    int64  `json:"size"`    // bytes of parts/NAME.arrow
	SHA256  string `json:"sha256"`  // of parts/NAME.arrow
	Worker  int    `json:"worker"`
	Workers int    `json:"workers"`
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
