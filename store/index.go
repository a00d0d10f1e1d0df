package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/ristretto/v2/z"
)

// The index (index/) is a Badger database written once, after extraction:
//
//	"k:" + split + "\x00" + key → uvarint part id, uvarint first row, uvarint views
//	"m:parts"                   → JSON [{name, rows}] of the parts it was built over
//
// Keys are unique within a split (iNat image ids are unique over train and
// val, but a folder tree's sample numbers are not), so the split is part of
// the index key.
// Part ids are positions in the sorted list of finished parts (Reader.Parts),
// which the "m:parts" entry pins down: a reader over other parts treats the
// index as stale.

const (
	keyPrefix = "k:"
	metaParts = "m:parts"
)

type indexedPart struct {
	Name string `json:"name"`
	Rows int    `json:"rows"`
}

// IndexStats describe a built index.
type IndexStats struct {
	Keys    int           // distinct keys (images)
	Parts   int           // parts indexed
	Bytes   int64         // size of index/ on disk
	Elapsed time.Duration // build time
}

// IndexOptions tune BuildIndex.
type IndexOptions struct {
	// Progress, when not nil, is called with the number of rows scanned so far.
	Progress func(rows int)
}

// badgerWriteOptions size Badger for an index written once by a stream and
// then only read: one version per key, no compression (values are a few
// bytes; keys compress poorly), values inline in the LSM tree, no sync per
// write (the directory is renamed into place only after a clean Close),
// and quiet.
func badgerWriteOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(false).
		WithNumVersionsToKeep(1).
		WithCompression(options.None).
		WithValueThreshold(1 << 10).
		WithValueLogFileSize(1 << 20).
		WithMemTableSize(1 << 20).
		WithBlockCacheSize(0).
		WithDetectConflicts(false).
		WithNumCompactors(2)
}

// badgerReadOptions open the index read-only (several readers may share it).
func badgerReadOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(nil).
		WithReadOnly(true).
		WithCompression(options.None).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(0).
		WithNumCompactors(0)
}

// BuildIndex (re)builds DIR/index over every finished part. It refreshes the
// manifest first (Finalize). Keys must be unique over the cache: a key in two
// parts is ErrDuplicateKey naming both. The new index is built in
// index.tmp/ and renamed over index/ once closed.
func BuildIndex(dir string, opt IndexOptions) (IndexStats, error) {
	start := time.Now()
	var st IndexStats
	if _, err := Finalize(dir); err != nil {
		return st, err
	}
	r, err := Open(dir, ReadOptions{})
	if err != nil {
		return st, err
	}
	defer r.Close()

	type entry struct {
		split, key       string // key: a view into the mapping
		part, row, views uint32
	}
	var ents []entry
	var meta []indexedPart
	scanned := 0
	for _, p := range r.Parts() {
		if err := p.CheckKeys(); err != nil {
			return st, err
		}
		meta = append(meta, indexedPart{p.Name, p.N})
		vs := p.Views()
		for i := 0; i < p.N; {
			k := p.keyView(i)
			if vs[i] != 0 {
				return st, fmt.Errorf("store: part %s row %d: key %q starts at view %d: %w", p.Name, i, k, vs[i], ErrCorrupt)
			}
			j := i + 1
			for j < p.N && vs[j] != 0 && p.keyView(j) == k {
				j++
			}
			ents = append(ents, entry{p.Split, k, uint32(p.ID), uint32(i), uint32(j - i)})
			i = j
		}
		scanned += p.N
		if opt.Progress != nil {
			opt.Progress(scanned)
		}
	}
	sort.Slice(ents, func(a, b int) bool {
		if ents[a].split != ents[b].split {
			return ents[a].split < ents[b].split
		}
		return ents[a].key < ents[b].key
	})
	parts := r.Parts()
	for i := 1; i < len(ents); i++ {
		if ents[i].key == ents[i-1].key && ents[i].split == ents[i-1].split {
			a, b := parts[ents[i-1].part], parts[ents[i].part]
			return st, fmt.Errorf("store: split %s: key %q is in part %s (row %d) and part %s (row %d): %w",
				ents[i].split, ents[i].key, a.Name, ents[i-1].row, b.Name, ents[i].row, ErrDuplicateKey)
		}
	}

	tmp := filepath.Join(dir, "index.tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return st, fmt.Errorf("store: index: %w", err)
	}
	db, err := badger.Open(badgerWriteOptions(tmp))
	if err != nil {
		return st, fmt.Errorf("store: index: open: %w", err)
	}
	sw := db.NewStreamWriter()
	if err := sw.Prepare(); err != nil {
		db.Close()
		return st, fmt.Errorf("store: index: %w", err)
	}
	mb, _ := json.Marshal(meta)
	// Keys go to the stream in sorted byte order; "k:…" < "m:parts".
	buf := z.NewBuffer(4<<20, "litcache.index")
	flush := func() error {
		if buf.LenNoPadding() == 0 {
			return nil
		}
		err := sw.Write(buf)
		buf.Reset()
		return err
	}
	var val [3 * binary.MaxVarintLen32]byte
	for _, e := range ents {
		v := binary.AppendUvarint(val[:0], uint64(e.part))
		v = binary.AppendUvarint(v, uint64(e.row))
		v = binary.AppendUvarint(v, uint64(e.views))
		badger.KVToBuffer(&pb.KV{Key: indexKey(e.split, e.key), Value: v, Version: 1}, buf)
		if buf.LenNoPadding() > 16<<20 {
			if err := flush(); err != nil {
				buf.Release()
				sw.Cancel()
				db.Close()
				return st, fmt.Errorf("store: index: %w", err)
			}
		}
	}
	badger.KVToBuffer(&pb.KV{Key: []byte(metaParts), Value: mb, Version: 1}, buf)
	err = flush()
	buf.Release()
	if err == nil {
		err = sw.Flush()
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return st, fmt.Errorf("store: index: %w", err)
	}
	final := filepath.Join(dir, "index")
	if err := os.RemoveAll(final); err != nil {
		return st, fmt.Errorf("store: index: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return st, fmt.Errorf("store: index: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return st, err
	}
	st.Keys, st.Parts, st.Elapsed = len(ents), len(parts), time.Since(start)
	st.Bytes, _ = dirSize(final)
	return st, nil
}

// Location is where a key's rows are: Views consecutive rows of Part from Row.
type Location struct {
	Part  *Part
	Row   int
	Views int
}

// indexKey is the Badger key of (split, key). Sorted Badger keys are sorted
// by split, then key, as BuildIndex streams them ("\x00" sorts first).
func indexKey(split, key string) []byte {
	b := make([]byte, 0, len(keyPrefix)+len(split)+1+len(key))
	b = append(b, keyPrefix...)
	b = append(b, split...)
	b = append(b, 0)
	return append(b, key...)
}

// Lookup finds key through the index (opened read-only on first use), in
// the first split (by name) that holds it. ErrNoIndex when the cache has
// none, ErrStaleIndex when it was built over other parts, ErrNotFound when
// the key is absent.
func (r *Reader) Lookup(key string) (Location, error) {
	var last error
	for _, s := range r.splits() {
		loc, err := r.LookupSplit(s, key)
		if err == nil || !errors.Is(err, ErrNotFound) {
			return loc, err
		}
		last = err
	}
	if last == nil {
		if _, err := r.openIndex(); err != nil {
			return Location{}, err
		}
		last = fmt.Errorf("store: key %q: %w", key, ErrNotFound)
	}
	return Location{}, last
}

// splits are the split names of the parts, sorted.
func (r *Reader) splits() []string {
	var out []string
	for _, p := range r.parts {
		if len(out) == 0 || out[len(out)-1] != p.Split {
			out = append(out, p.Split)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// LookupSplit finds key of one split through the index.
func (r *Reader) LookupSplit(split, key string) (Location, error) {
	db, err := r.openIndex()
	if err != nil {
		return Location{}, err
	}
	var v []byte
	err = db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(indexKey(split, key))
		if err != nil {
			return err
		}
		v, err = it.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Location{}, fmt.Errorf("store: key %q (split %s): %w", key, split, ErrNotFound)
	}
	if err != nil {
		return Location{}, fmt.Errorf("store: index: %w", err)
	}
	loc, err := r.decodeLocation(key, v)
	if err != nil {
		return loc, err
	}
	// The caller reads the row's key and caption next.
	if err := loc.Part.CheckKeys(); err != nil {
		return loc, err
	}
	return loc, loc.Part.CheckCaptions()
}

// decodeLocation parses an index value (uvarint part, row, views).
func (r *Reader) decodeLocation(key string, v []byte) (Location, error) {
	part, n1 := binary.Uvarint(v)
	row, n2 := binary.Uvarint(v[max(n1, 0):])
	views, n3 := binary.Uvarint(v[max(n1, 0)+max(n2, 0):])
	if n1 <= 0 || n2 <= 0 || n3 <= 0 || part >= uint64(len(r.parts)) || row+views > uint64(r.parts[part].N) {
		return Location{}, fmt.Errorf("store: index entry of key %q is malformed: %w", key, ErrCorrupt)
	}
	return Location{Part: r.parts[part], Row: int(row), Views: int(views)}, nil
}

// HasIndex tells whether DIR/index exists.
func HasIndex(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "index"))
	return err == nil
}

func (r *Reader) openIndex() (*badger.DB, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.index != nil {
		if !r.indexOK {
			return nil, fmt.Errorf("store: %s: %w", r.dir, ErrStaleIndex)
		}
		return r.index, nil
	}
	path := filepath.Join(r.dir, "index")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: %s: %w", r.dir, ErrNoIndex)
	}
	db, err := badger.Open(badgerReadOptions(path))
	if err != nil {
		return nil, fmt.Errorf("store: index: open read-only: %w", err)
	}
	var mb []byte
	err = db.View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(metaParts))
		if err != nil {
			return err
		}
		mb, err = it.ValueCopy(nil)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: index: parts list: %v: %w", err, ErrCorrupt)
	}
	var meta []indexedPart
	if err := json.Unmarshal(mb, &meta); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: index: parts list: %v: %w", err, ErrCorrupt)
	}
	r.index = db
	r.indexOK = len(meta) == len(r.parts)
	for i := 0; r.indexOK && i < len(meta); i++ {
		r.indexOK = meta[i].Name == r.parts[i].Name && meta[i].Rows == r.parts[i].N
	}
	if !r.indexOK {
		return nil, fmt.Errorf("store: %s: %w", r.dir, ErrStaleIndex)
	}
	return db, nil
}

// indexKeys calls fn for every key in the index with its location, in key order.
func (r *Reader) indexKeys(fn func(key string, loc Location) error) error {
	db, err := r.openIndex()
	if err != nil {
		return err
	}
	return db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte(keyPrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			_, k, _ := bytes.Cut(bytes.TrimPrefix(it.Item().Key(), []byte(keyPrefix)), []byte{0})
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			loc, err := r.decodeLocation(string(k), v)
			if err != nil {
				return err
			}
			if err := fn(string(k), loc); err != nil {
				return err
			}
		}
		return nil
	})
}

// dirSize sums the sizes of the files under dir (apparent sizes).
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n, err
}
