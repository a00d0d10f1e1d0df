package wds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ExpectedSamples is how many samples a shard should hold by what its
// producers wrote beside it, and where that came from: sizes.json in its
// folder (webdataset, OpenCLIP, litcache caption), img2dataset's
// NAME_stats.json ("successes"), or a wids shard index (a JSON file in the
// folder with "__kind__": "wids-shard-index-v1" listing it with
// "nsamples"). ok is false when none of them names the shard. A damaged
// shard's unread samples are estimated from it.
func ExpectedSamples(path string) (n int, source string, ok bool) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if sizes, err := ReadSizes(dir); err == nil {
		if n, ok := sizes[base]; ok {
			return n, filepath.Join(dir, SizesFile), true
		}
	}
	stem := base
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst"} {
		if strings.HasSuffix(base, ext) {
			stem = strings.TrimSuffix(base, ext)
			break
		}
	}
	stats := filepath.Join(dir, stem+"_stats.json")
	if b, err := os.ReadFile(stats); err == nil {
		var st struct {
			Successes *int `json:"successes"`
		}
		if json.Unmarshal(b, &st) == nil && st.Successes != nil && *st.Successes >= 0 {
			return *st.Successes, stats, true
		}
	}
	return widsCount(dir, base)
}

// widsIndexKind marks a wids shard index.
const widsIndexKind = "wids-shard-index-v1"

// widsCount looks for base in the wids shard indexes of dir.
func widsCount(dir, base string) (int, string, bool) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, "", false
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") || name == SizesFile || strings.HasSuffix(name, "_stats.json") {
			continue
		}
		p := filepath.Join(dir, name)
		if !isWidsIndex(p) {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var idx struct {
			Shards []struct {
				URL      string `json:"url"`
				NSamples *int   `json:"nsamples"`
			} `json:"shardlist"`
		}
		if json.Unmarshal(b, &idx) != nil {
			continue
		}
		for _, s := range idx.Shards {
			if s.NSamples != nil && *s.NSamples >= 0 && (s.URL == base || strings.HasSuffix(s.URL, "/"+base)) {
				return *s.NSamples, p, true
			}
		}
	}
	return 0, "", false
}

// isWidsIndex peeks at a JSON file's first KiB for the wids kind, so that
// other (possibly large) JSON files beside the shards are not parsed.
func isWidsIndex(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 1024)
	n, _ := io.ReadFull(f, head)
	return bytes.Contains(head[:n], []byte(widsIndexKind))
}

// EstimateLost is how many samples a damaged shard did not give: expected
// minus the samples read when the count is known, else an extrapolation from
// the part of a plain .tar that was read (offset of size bytes), else 1 (the
// damage hid at least the sample it hit). It never returns less than 0, and
// 1 or more when the count is not known.
func EstimateLost(path string, read int, damageOffset int64) (lost int, how string) {
	if n, src, ok := ExpectedSamples(path); ok {
		return max(n-read, 0), fmt.Sprintf("%d expected by %s", n, src)
	}
	if comp, err := CompressionOf(path); err == nil && comp == None && read > 0 && damageOffset > 0 {
		if st, err := os.Stat(path); err == nil && st.Size() > damageOffset {
			est := int((float64(st.Size()-damageOffset)/float64(damageOffset))*float64(read) + 0.5)
			return max(est, 1), fmt.Sprintf("estimated from the %d of %d bytes read", damageOffset, st.Size())
		}
	}
	return 1, "count unknown (no sizes.json, _stats.json or wids index names the shard)"
}
