package store

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	badger "github.com/dgraph-io/badger/v4"
	"golang.org/x/sync/errgroup"

	"github.com/litcache/litcache/internal/half"
)

// ReadOptions tune Open.
type ReadOptions struct {
	// ExpectFingerprint, when not empty, must equal the manifest's
	// fingerprint; otherwise Open fails with ErrFingerprint naming both.
	ExpectFingerprint string
	// Workers open parts in parallel (16 when 0): opening is a few page
	// reads per part, which a cold disk serves faster several at a time.
	Workers int
	// Access is how the embeddings will be read (Part.Advise): AdviseNormal
	// (the kernel reads ahead; scans) or AdviseRandom (rows in random order:
	// each reads only its own pages).
	Access Advice
}

// Reader is an open cache: every finished part mapped read-only.
type Reader struct {
	dir   string
	m     Manifest
	parts []*Part
	caps  captionTable // one copy of each caption for all parts

	mu      sync.Mutex
	index   *badger.DB
	indexOK bool
}

// Open maps every finished part of the cache in DIR (parts without a done/
// marker are ignored: they belong to a run still going or killed).
//
// Opening reads only what is cheap: each part's Arrow metadata (a few
// pages), checked against its marker and the manifest, and its view column.
// A part's keys and captions are checked, and its caption dictionary is
// read, when first used (CheckKeys, CheckCaptions): training from class
// captions needs neither, and at iNat2021's size (279 parts) reading them all
// made the first step wait seconds and copied 125 MiB of captions to the heap.
func Open(dir string, opt ReadOptions) (*Reader, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if opt.ExpectFingerprint != "" && opt.ExpectFingerprint != m.Fingerprint {
		return nil, fmt.Errorf("store: cache %s was made by image tower %s, but %s is expected: %w", dir, m.Fingerprint, opt.ExpectFingerprint, ErrFingerprint)
	}
	markers, err := readMarkers(dir)
	if err != nil {
		return nil, err
	}
	for _, mk := range markers {
		if mk.Fingerprint != "" && mk.Fingerprint != m.Fingerprint {
			return nil, fmt.Errorf("store: cache %s: part %s was made by image tower %s, the manifest says %s: %w", dir, mk.Name, mk.Fingerprint, m.Fingerprint, ErrFingerprint)
		}
	}
	r := &Reader{dir: dir, m: m, parts: make([]*Part, len(markers))}
	errs := make([]error, len(markers))
	workers := opt.Workers
	if workers <= 0 {
		workers = 16
	}
	var g errgroup.Group
	g.SetLimit(workers)
	for i, mk := range markers {
		g.Go(func() error {
			p, err := openPart(dir, i, mk, m)
			if err == nil {
				p.r = r
				err = p.Advise(opt.Access)
			}
			r.parts[i], errs[i] = p, err
			return nil
		})
	}
	g.Wait()
	for _, err := range errs {
		if err != nil { // the first part's error, whatever the finishing order
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// Dir is the cache directory.
func (r *Reader) Dir() string { return r.dir }

// Manifest is the cache's manifest.json as read.
func (r *Reader) Manifest() Manifest { return r.m }

// Parts are the finished parts, sorted by name; Part.ID is the position here.
func (r *Reader) Parts() []*Part { return r.parts }

// Split returns the parts of one split (e.g. "train").
func (r *Reader) Split(name string) []*Part {
	var out []*Part
	for _, p := range r.parts {
		if p.Split == name {
			out = append(out, p)
		}
	}
	return out
}

// Rows is the number of rows over all parts.
func (r *Reader) Rows() int {
	n := 0
	for _, p := range r.parts {
		n += p.N
	}
	return n
}

// Close unmaps every part and closes the index. Slices and strings taken
// from the parts must not be used afterwards (Key's and Caption's strings
// excepted: they are copies).
func (r *Reader) Close() error {
	var first error
	for _, p := range r.parts {
		if p == nil {
			continue
		}
		if err := p.close(); err != nil && first == nil {
			first = err
		}
	}
	r.parts = nil
	r.mu.Lock()
	if r.index != nil {
		if err := r.index.Close(); err != nil && first == nil {
			first = err
		}
		r.index = nil
	}
	r.mu.Unlock()
	return first
}

// captionTable interns captions: parts share most of their captions (a
// shuffled iNat shard holds most of the 10,000 classes), so each distinct
// caption is copied to the heap once for the whole cache.
type captionTable struct {
	mu   sync.Mutex
	text map[string]string
}

// intern returns the table's copy of s (which may point into a mapping).
func (t *captionTable) intern(s string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.text[s]; ok {
		return c
	}
	if t.text == nil {
		t.text = map[string]string{}
	}
	c := strings.Clone(s)
	t.text[c] = c
	return c
}

// Part is one mapped Arrow file. The numeric slices it returns (Labels,
// Views, CaptionIDs, EmbF32, EmbF16) point into the mapping (no copy; where
// mmap is unavailable the file is read into memory once) and are valid until
// the Reader is closed. Keys and captions are copied into Go strings (one
// shared copy of each caption per Reader).
type Part struct {
	ID     int    // position in Reader.Parts
	Name   string // parts/NAME.arrow
	Split  string
	Shard  string // the input shard it came from
	N      int    // rows
	Dim    int    // D
	DType  string // "float16" or "float32"
	Marker Marker

	r      *Reader // its captions go into r.caps (nil: a part opened alone)
	data   []byte
	emb    []byte // the embedding values inside data
	unmap  func() error
	sr     *ipc.Reader
	rec    arrow.RecordBatch
	keys   *array.String
	labels []int32
	views  []uint8
	capIDs []int32
	dict   *array.String // the caption dictionary, in the mapping
	f32    []float32
	f16    []uint16

	keysOnce, capsOnce, labelsOnce sync.Once
	keysErr, capsErr               error
	caps                           []string // the dictionary's captions, interned
}

// openPart maps parts/NAME.arrow and checks it against its marker and the manifest.
func openPart(dir string, id int, mk Marker, m Manifest) (*Part, error) {
	path := partPath(dir, mk.Name)
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("store: part %s: %w", mk.Name, err)
	}
	if st.Size() != mk.Size {
		return nil, fmt.Errorf("store: part %s: file has %d bytes, marker says %d: %w", mk.Name, st.Size(), mk.Size, ErrCorrupt)
	}
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("store: part %s: %w", mk.Name, err)
	}
	p := &Part{ID: id, Name: mk.Name, Split: mk.Split, Shard: mk.Shard, Dim: m.Dim, DType: m.DType, Marker: mk, data: data, unmap: unmap}
	if err := p.load(m); err != nil {
		p.close()
		return nil, fmt.Errorf("store: part %s: %w", mk.Name, err)
	}
	if p.N != mk.Rows {
		p.close()
		return nil, fmt.Errorf("store: part %s: %d rows, marker says %d: %w", mk.Name, p.N, mk.Rows, ErrCorrupt)
	}
	return p, nil
}

// load reads the Arrow footer and schema and takes zero-copy views of the
// columns. Its checks read the metadata and the view column only; keys and
// captions are checked on first use.
func (p *Part) load(m Manifest) (err error) {
	defer func() {
		// arrow-go panics on some malformed inputs; a damaged file is an error.
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed arrow file: %v: %w", r, ErrCorrupt)
		}
	}()
	mr, err := newMappedMessages(p.data)
	if err != nil {
		return err
	}
	p.sr, err = ipc.NewReaderFromMessageReader(mr)
	if err != nil {
		return asCorrupt(err)
	}
	want := Schema(m.Dim, m.DType)
	if !p.sr.Schema().Equal(want) {
		return fmt.Errorf("schema %s, want %s: %w", p.sr.Schema(), want, ErrCorrupt)
	}
	if !p.sr.Next() {
		if err := p.sr.Err(); err != nil {
			return asCorrupt(err)
		}
		return fmt.Errorf("no record batch: %w", ErrCorrupt)
	}
	p.rec = p.sr.RecordBatch()
	p.rec.Retain()
	if p.sr.Next() {
		return fmt.Errorf("more than one record batch: %w", ErrCorrupt)
	}
	if err := p.sr.Err(); err != nil {
		return asCorrupt(err)
	}
	p.N = int(p.rec.NumRows())
	for i, c := range p.rec.Columns() {
		if c.NullN() != 0 {
			return fmt.Errorf("column %s has %d nulls: %w", p.rec.ColumnName(i), c.NullN(), ErrCorrupt)
		}
		if c.Len() != p.N {
			return fmt.Errorf("column %s has %d rows, the batch %d: %w", p.rec.ColumnName(i), c.Len(), p.N, ErrCorrupt)
		}
	}
	p.keys = p.rec.Column(0).(*array.String)
	p.labels = p.rec.Column(1).(*array.Int32).Int32Values()
	p.views = p.rec.Column(2).(*array.Uint8).Uint8Values()
	dict := p.rec.Column(3).(*array.Dictionary)
	p.capIDs = dict.Indices().(*array.Int32).Int32Values()
	p.dict = dict.Dictionary().(*array.String)
	if len(p.labels) != p.N || len(p.views) != p.N || len(p.capIDs) != p.N {
		return fmt.Errorf("a metadata column's buffer is shorter than its %d rows: %w", p.N, ErrCorrupt)
	}
	fl := p.rec.Column(4).(*array.FixedSizeList)
	vals := fl.ListValues()
	if vals.Len() != p.N*p.Dim {
		return fmt.Errorf("emb holds %d values, want %d×%d: %w", vals.Len(), p.N, p.Dim, ErrCorrupt)
	}
	switch v := vals.(type) {
	case *array.Float32:
		p.f32 = v.Float32Values()
		if len(p.f32) != p.N*p.Dim {
			return fmt.Errorf("emb buffer holds %d values, want %d×%d: %w", len(p.f32), p.N, p.Dim, ErrCorrupt)
		}
		p.emb = bytesOf(p.f32)
	case *array.Float16:
		h := v.Values()
		if len(h) != p.N*p.Dim {
			return fmt.Errorf("emb buffer holds %d values, want %d×%d: %w", len(h), p.N, p.Dim, ErrCorrupt)
		}
		if len(h) > 0 {
			p.f16 = unsafe.Slice((*uint16)(unsafe.Pointer(&h[0])), len(h))
		}
		p.emb = bytesOf(p.f16)
	default:
		return fmt.Errorf("emb values of type %s: %w", vals.DataType(), ErrCorrupt)
	}
	if p.f32 == nil && p.f16 == nil {
		p.f32, p.f16 = []float32{}, []uint16{}
	}
	p.prefetch(p.views)
	for i, v := range p.views {
		if int(v) >= m.Views {
			return fmt.Errorf("row %d: view %d outside 0..%d: %w", i, v, m.Views-1, ErrCorrupt)
		}
	}
	return nil
}

// CheckKeys validates the key column (offsets and UTF-8) on its first call
// and returns what it found then. The index build, Verify, Scan, Lookup and
// the export call it; Key panics on a column that fails it.
func (p *Part) CheckKeys() error {
	p.keysOnce.Do(func() {
		defer func() {
			if r := recover(); r != nil {
				p.keysErr = fmt.Errorf("store: part %s: key column: %v: %w", p.Name, r, ErrCorrupt)
			}
		}()
		p.prefetch(bytesOf(p.keys.ValueOffsets()), p.keys.ValueBytes())
		if err := p.keys.ValidateFull(); err != nil {
			p.keysErr = fmt.Errorf("store: part %s: key column: %v: %w", p.Name, err, ErrCorrupt)
		}
	})
	return p.keysErr
}

// CheckCaptions validates the caption column (dictionary and ids) and
// reads the dictionary into the Reader's shared table, on its first call;
// it returns what it found then. Caption, Captions and CaptionIDs panic on a
// column that fails it.
func (p *Part) CheckCaptions() error {
	p.capsOnce.Do(func() {
		defer func() {
			if r := recover(); r != nil {
				p.capsErr = fmt.Errorf("store: part %s: caption column: %v: %w", p.Name, r, ErrCorrupt)
			}
		}()
		p.prefetch(bytesOf(p.dict.ValueOffsets()), p.dict.ValueBytes(), bytesOf(p.capIDs))
		if err := p.dict.ValidateFull(); err != nil {
			p.capsErr = fmt.Errorf("store: part %s: caption dictionary: %v: %w", p.Name, err, ErrCorrupt)
			return
		}
		for i, c := range p.capIDs {
			if c < 0 || int(c) >= p.dict.Len() {
				p.capsErr = fmt.Errorf("store: part %s: row %d: caption id %d outside the dictionary of %d: %w", p.Name, i, c, p.dict.Len(), ErrCorrupt)
				return
			}
		}
		t := &captionTable{}
		if p.r != nil {
			t = &p.r.caps
		}
		p.caps = make([]string, p.dict.Len())
		for i := range p.caps {
			p.caps[i] = t.intern(p.dict.Value(i))
		}
	})
	return p.capsErr
}

func mustCheck(err error) {
	if err != nil {
		panic(err)
	}
}

func (p *Part) close() error {
	if p.rec != nil {
		p.rec.Release()
		p.rec = nil
	}
	if p.sr != nil {
		p.sr.Release()
		p.sr = nil
	}
	if p.unmap != nil {
		err := p.unmap()
		p.unmap = nil
		p.data, p.emb = nil, nil
		return err
	}
	return nil
}

// Scan finds key by reading every part's keys (no index needed; linear in
// the cache size).
func (r *Reader) Scan(key string) (Location, error) {
	for _, p := range r.parts {
		if err := p.CheckKeys(); err != nil {
			return Location{}, err
		}
		for i := 0; i < p.N; i++ {
			if p.keyView(i) == key && p.views[i] == 0 {
				j := i + 1
				for j < p.N && p.views[j] != 0 && p.keyView(j) == key {
					j++
				}
				return Location{Part: p, Row: i, Views: j - i}, p.CheckCaptions()
			}
		}
	}
	return Location{}, fmt.Errorf("store: key %q: %w", key, ErrNotFound)
}

// Key is row i's key (a copy, safe after Close). It panics when the key
// column fails CheckKeys.
func (p *Part) Key(i int) string { return strings.Clone(p.keyView(i)) }

// keyView is row i's key pointing into the mapping.
func (p *Part) keyView(i int) string {
	mustCheck(p.CheckKeys())
	return p.keys.Value(i)
}

// Labels (N) are the class labels (iNat category ids), zero-copy.
func (p *Part) Labels() []int32 {
	p.labelsOnce.Do(func() { p.prefetch(bytesOf(p.labels)) })
	return p.labels
}

// Views (N) are the view numbers (0 = eval transform), zero-copy.
func (p *Part) Views() []uint8 { return p.views }

// CaptionIDs (N) index Captions, zero-copy. It panics when the caption
// column fails CheckCaptions.
func (p *Part) CaptionIDs() []int32 {
	mustCheck(p.CheckCaptions())
	return p.capIDs
}

// Captions is the part's caption dictionary: strings shared by every part
// of the Reader, read on first use. It panics when the caption column fails
// CheckCaptions.
func (p *Part) Captions() []string {
	mustCheck(p.CheckCaptions())
	return p.caps
}

// Caption is row i's caption (safe after Close). It panics when the caption
// column fails CheckCaptions.
func (p *Part) Caption(i int) string {
	mustCheck(p.CheckCaptions())
	return p.caps[p.capIDs[i]]
}

// EmbF32 is the (N,D) embedding matrix of a float32 cache, zero-copy; nil for float16.
func (p *Part) EmbF32() []float32 { return p.f32 }

// EmbF16 is the (N,D) half-precision bit patterns of a float16 cache, zero-copy; nil for float32.
func (p *Part) EmbF16() []uint16 { return p.f16 }

// Row converts row i's embedding to float32 into dst (allocated when short).
func (p *Part) Row(i int, dst []float32) []float32 {
	if cap(dst) < p.Dim {
		dst = make([]float32, p.Dim)
	}
	dst = dst[:p.Dim]
	if p.f32 != nil && p.DType == Float32 {
		copy(dst, p.f32[i*p.Dim:(i+1)*p.Dim])
		return dst
	}
	return half.F16ToF32s(dst, p.f16[i*p.Dim:(i+1)*p.Dim])
}

// Rows converts rows [lo,hi) to float32 into dst ((hi-lo)×D).
func (p *Part) Rows(lo, hi int, dst []float32) []float32 {
	n := (hi - lo) * p.Dim
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	if p.DType == Float32 {
		copy(dst, p.f32[lo*p.Dim:hi*p.Dim])
		return dst
	}
	return half.F16ToF32s(dst, p.f16[lo*p.Dim:hi*p.Dim])
}
