package store

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// ExpectFingerprint, when set, must equal the manifest's.
	ExpectFingerprint string
	// Progress, when not nil, is called with bytes hashed so far.
	Progress func(bytes int64)
}

// VerifyReport is what Verify found. Problems make the cache unusable as
// is; Warnings do not (e.g. a part left by a run still going).
type VerifyReport struct {
	Parts, Rows, Samples, Rejects int
	Bytes                         int64
	Keys                          int
	IndexChecked                  bool
	// Producers counts the parts and rows of each producer, the cache's
	// own (the manifest's) first; more than one is a mixed cache.
	Producers []ProducerCount
	Problems  []string
	Warnings  []string
}

// OK tells whether no problem was found.
func (v VerifyReport) OK() bool { return len(v.Problems) == 0 }

// Verify checks a cache through and through: every marker's part exists
// with the recorded size and sha256, opens with the cache's schema, holds
// the recorded rows, finite embeddings and consecutive views per key; rejects
// files hold the recorded count; keys are unique over all parts; the index,
// when present, agrees with the parts. A returned error means Verify could
// not run; what it found is in the report (and ErrCorrupt is returned with
// it when there is a problem).
func Verify(dir string, opt VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	m, err := ReadManifest(dir)
	if err != nil {
		return rep, err
	}
	if opt.ExpectFingerprint != "" && opt.ExpectFingerprint != m.Fingerprint {
		return rep, fmt.Errorf("store: cache %s was made by image tower %s, but %s is expected: %w", dir, m.Fingerprint, opt.ExpectFingerprint, ErrFingerprint)
	}
	markers, err := readMarkers(dir)
	if err != nil {
		return rep, err
	}
	problem := func(format string, a ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, a...)) }
	warn := func(format string, a ...any) { rep.Warnings = append(rep.Warnings, fmt.Sprintf(format, a...)) }

	// Orphans: parts, temp files and rejects without a marker.
	named := map[string]bool{}
	for _, mk := range markers {
		named[mk.Name] = true
	}
	for _, sub := range []string{"parts", "rejects"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			n := e.Name()
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, ".tmp"), ".arrow"), ".jsonl")
			if !named[base] || strings.HasSuffix(n, ".tmp") {
				warn("%s/%s has no done/ marker (a run still going, or killed: the next run redoes it)", sub, n)
			}
		}
	}

	// Part by part (checkParts): each is hashed, opened, checked, its keys
	// copied for the checks across parts, and unmapped, so that verifying
	// needs the memory of a part per worker, not of the cache.
	var parts []*Part // closed: names and row counts for the index check
	var keys []partKeys
	for _, c := range checkParts(dir, markers, m, opt.Progress) {
		rep.Problems = append(rep.Problems, c.problems...)
		if c.p == nil {
			continue
		}
		c.p.ID = len(parts)
		parts = append(parts, c.p)
		keys = append(keys, c.keys)
		rep.Parts++
		rep.Rows += c.p.N
		rep.Samples += c.mk.Samples
		rep.Rejects += c.mk.Rejects
		rep.Bytes += c.size
	}
	rep.Producers = producersOf(markers, m.Producer)
	checkProducers(markers, m.Producer, problem, warn)

	// Keys unique within each split.
	type ent struct {
		split, key string
		part, row  int
	}
	ents := make([]ent, 0, rep.Rows) // the rows bound the keys: no regrowth (2.7M entries at iNat2021's size)
	for pi, p := range parts {
		for i, k := range keys[pi].key {
			if keys[pi].first[i] {
				ents = append(ents, ent{p.Split, k, pi, i})
			}
		}
	}
	slices.SortFunc(ents, func(a, b ent) int {
		if c := strings.Compare(a.split, b.split); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	for i := 1; i < len(ents); i++ {
		if ents[i].key == ents[i-1].key && ents[i].split == ents[i-1].split {
			problem("split %s: key %q is in part %s (row %d) and part %s (row %d)", ents[i].split, ents[i].key, parts[ents[i-1].part].Name, ents[i-1].row, parts[ents[i].part].Name, ents[i].row)
		}
	}
	rep.Keys = len(ents)
	if m.Rows != rep.Rows || m.Rejects != rep.Rejects || m.Samples != rep.Samples {
		warn("manifest counts (%d rows, %d samples, %d rejects) lag the markers (%d, %d, %d): `litcache cache index` refreshes them",
			m.Rows, m.Samples, m.Rejects, rep.Rows, rep.Samples, rep.Rejects)
	}

	// The index, when present and the parts are sound.
	if HasIndex(dir) && len(rep.Problems) == 0 {
		r := &Reader{dir: dir, m: m, parts: parts}
		n := 0
		err := r.indexKeys(func(key string, loc Location) error {
			n++
			if got := keys[loc.Part.ID].key[loc.Row]; got != key || !keys[loc.Part.ID].first[loc.Row] || loc.Views < 1 {
				return fmt.Errorf("index: key %q points at row %d of part %s, which holds %q", key, loc.Row, loc.Part.Name, got)
			}
			return nil
		})
		r.mu.Lock()
		if r.index != nil {
			r.index.Close()
		}
		r.mu.Unlock()
		switch {
		case errors.Is(err, ErrStaleIndex):
			warn("index/ was built over other parts: run `litcache cache index %s`", dir)
		case err != nil:
			problem("%v", err)
		case n != len(ents):
			problem("index has %d keys, the parts %d", n, len(ents))
		default:
			rep.IndexChecked = true
		}
	} else if !HasIndex(dir) {
		warn("no index/ (run `litcache cache index %s`)", dir)
	}
	if len(rep.Problems) > 0 {
		return rep, fmt.Errorf("store: verify %s: %d problems: %w", dir, len(rep.Problems), ErrCorrupt)
	}
	return rep, nil
}

// partCheck is what checkPart found in one part: its problems, and when it
// is sound the (closed) part and its keys.
type partCheck struct {
	mk       Marker
	p        *Part
	keys     partKeys
	size     int64
	problems []string
}

// checkParts runs checkPart over the markers on up to 8 goroutines (hashing
// and the embedding scan are CPU-bound, and one worker leaves the disk idle
// while it hashes), and returns the checks in the markers' order, so the
// report reads the same whatever the number of workers. Each worker maps one
// part at a time. progress, when not nil, gets the bytes hashed so far, from
// one goroutine at a time.
func checkParts(dir string, markers []Marker, m Manifest, progress func(int64)) []partCheck {
	out := make([]partCheck, len(markers))
	var (
		mu     sync.Mutex
		hashed int64
		next   atomic.Int64
		wg     sync.WaitGroup
	)
	add := func(k int64) {
		mu.Lock()
		defer mu.Unlock()
		hashed += k
		if progress != nil {
			progress(hashed)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), 8, len(markers))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(markers); i = int(next.Add(1) - 1) {
				out[i] = checkPart(dir, markers[i], m, add)
			}
		}()
	}
	wg.Wait()
	return out
}

// checkPart hashes the part of marker mk and compares it with the marker,
// then opens it and runs verifyPart and checkIdentity. add gets the bytes
// hashed as they are.
func checkPart(dir string, mk Marker, m Manifest, add func(int64)) partCheck {
	c := partCheck{mk: mk}
	problem := func(format string, a ...any) { c.problems = append(c.problems, fmt.Sprintf(format, a...)) }
	var last int64
	sum, n, err := hashFile(partPath(dir, mk.Name), func(k int64) { add(k - last); last = k })
	switch {
	case err != nil:
		problem("part %s: %v", mk.Name, err)
		return c
	case n != mk.Size:
		problem("part %s: %d bytes, marker says %d", mk.Name, n, mk.Size)
		return c
	case sum != mk.SHA256:
		problem("part %s: sha256 %s, marker says %s", mk.Name, sum, mk.SHA256)
		return c
	}
	p, err := openPart(dir, 0, mk, m) // the ID is set once the sound parts are known
	if err != nil {
		problem("%v", err)
		return c
	}
	k, err := verifyPart(p, mk, dir, problem)
	if err == nil {
		checkIdentity(p, mk, m, problem)
	}
	p.close()
	if err != nil {
		problem("%v", err)
		return c
	}
	c.p, c.keys, c.size = p, k, n
	return c
}

// checkIdentity compares what part p says made it (schema metadata) and
// what its marker says with the manifest.
func checkIdentity(p *Part, mk Marker, m Manifest, problem func(string, ...any)) {
	if mk.Fingerprint != "" && mk.Fingerprint != m.Fingerprint {
		problem("part %s: marker says image tower %s, the manifest %s", mk.Name, mk.Fingerprint, m.Fingerprint)
	}
	pm, ok, err := partMetaOf(p.sr.Schema())
	switch {
	case err != nil:
		problem("part %s: %v", mk.Name, err)
	case ok && pm.Fingerprint != m.Fingerprint:
		problem("part %s: its schema metadata says image tower %s, the manifest %s", mk.Name, pm.Fingerprint, m.Fingerprint)
	case ok && (mk.Producer.Known() && pm.Producer.Key() != mk.Producer.Key() || pm.Name != mk.Name):
		problem("part %s: its schema metadata says part %s by %s, its marker %s by %s", mk.Name, pm.Name, pm.Producer, mk.Name, mk.Producer)
	}
}

// producersOf counts the markers' producers, ref's first.
func producersOf(markers []Marker, ref Producer) []ProducerCount {
	pc := countProducers(markers)
	sort.SliceStable(pc, func(i, j int) bool { return pc[i].Producer.Key() == ref.Key() && pc[j].Producer.Key() != ref.Key() })
	return pc
}

// checkProducers reports parts whose producer is not the cache's: a
// problem, unless the part's writer was allowed to mix (then a warning),
// and a warning for parts that record none.
func checkProducers(markers []Marker, ref Producer, problem, warn func(string, ...any)) {
	if !ref.Known() {
		for _, mk := range markers {
			if mk.Producer.Known() {
				ref = mk.Producer // the manifest predates producers: the first recorded one
				break
			}
		}
	}
	unknown := 0
	for _, mk := range markers {
		switch {
		case !mk.Producer.Known():
			unknown++
		case mk.Producer.Key() == ref.Key():
		case mk.MixedProducersAllowed:
			warn("part %s was made by %s, the cache's rows by %s (mixing allowed when it was written)", mk.Name, mk.Producer, ref)
		default:
			problem("part %s was made by %s, the cache's rows by %s: the cache mixes producers", mk.Name, mk.Producer, ref)
		}
	}
	if unknown > 0 {
		warn("%d parts do not record their producer (written by an older build)", unknown)
	}
}

// partKeys are a verified part's keys by row, copied out of the mapping
// (one string per part holds them all), and which rows are view 0.
type partKeys struct {
	key   []string
	first []bool
}

// verifyPart checks one open part against its marker: keys and captions
// valid, embeddings finite, consecutive views per key, sample and reject
// counts. It returns the part's keys for the checks across parts.
func verifyPart(p *Part, mk Marker, dir string, problem func(string, ...any)) (partKeys, error) {
	var pk partKeys
	if err := p.CheckKeys(); err != nil {
		return pk, err
	}
	if err := p.CheckCaptions(); err != nil {
		return pk, err
	}
	// Sequential reads of every embedding: readahead, and pages dropped
	// behind the scan.
	p.Advise(AdviseSequential)
	if bad := nonFinite(p); bad >= 0 {
		problem("part %s: row %d has a non-finite embedding value", mk.Name, bad)
	}
	vs := p.Views()
	kept := 0
	for i := 0; i < p.N; i++ {
		if vs[i] == 0 {
			kept++
		} else if p.keyView(i) != p.keyView(i-1) || vs[i] != vs[i-1]+1 {
			problem("part %s: row %d: view %d of key %q does not follow view %d of the same key", mk.Name, i, vs[i], p.keyView(i), vs[i]-1)
			break
		}
	}
	if kept+mk.Rejects != mk.Samples {
		problem("part %s: %d kept + %d rejected samples, marker says %d samples", mk.Name, kept, mk.Rejects, mk.Samples)
	}
	if lines, err := countLines(rejectsPath(dir, mk.Name)); err != nil && mk.RejectLines() > 0 {
		problem("part %s: rejects file: %v", mk.Name, err)
	} else if lines != mk.RejectLines() {
		problem("part %s: rejects file has %d lines, marker says %d", mk.Name, lines, mk.RejectLines())
	}
	var all strings.Builder
	for i := 0; i < p.N; i++ {
		all.WriteString(p.keyView(i))
	}
	arena := all.String()
	pk.key, pk.first = make([]string, p.N), make([]bool, p.N)
	off := 0
	for i := 0; i < p.N; i++ {
		n := len(p.keyView(i))
		pk.key[i], pk.first[i] = arena[off:off+n], vs[i] == 0
		off += n
	}
	return pk, nil
}

// nonFinite returns the first row holding a NaN or Inf, or -1.
func nonFinite(p *Part) int {
	if p.DType == Float32 {
		for i, v := range p.f32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return i / p.Dim
			}
		}
		return -1
	}
	for i, h := range p.f16 {
		if h&0x7c00 == 0x7c00 {
			return i / p.Dim
		}
	}
	return -1
}

func hashFile(path string, progress func(int64)) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 4<<20)
	var n int64
	for {
		k, err := f.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		progress(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", n, err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func countLines(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	if err != nil {
		return 0, err
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			n++
		}
	}
	return n, sc.Err()
}
