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

	"github.com/litcache/litcache/internal/half"
)

// ReadOptions tune Open.
type ReadOptions struct {
	// ExpectFingerprint, when not empty, must equal the manifest's
	// fingerprint; otherwise Open fails with ErrFingerprint naming both.
	ExpectFingerprint string
}

// Reader is an open cache: every finished part mapped read-only.
type Reader struct {
	dir   string
	m     Manifest
	parts []*Part

	mu      sync.Mutex
	index   *badger.DB
	indexOK bool
}

// Open maps every finished part of the cache in DIR (parts without a done/
// marker are ignored: they belong to a run still going or killed).
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
	r := &Reader{dir: dir, m: m}
	for i, mk := range markers {
		if mk.Fingerprint != "" && mk.Fingerprint != m.Fingerprint {
			r.Close()
			return nil, fmt.Errorf("store: cache %s: part %s was made by image tower %s, the manifest says %s: %w", dir, mk.Name, mk.Fingerprint, m.Fingerprint, ErrFingerprint)
		}
		p, err := openPart(dir, i, mk, m)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.parts = append(r.parts, p)
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
// from the parts must not be used afterwards.
func (r *Reader) Close() error {
	var first error
	for _, p := range r.parts {
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

// Part is one mapped Arrow file. The numeric slices it returns (Labels,
// Views, CaptionIDs, EmbF32, EmbF16) point into the mapping (no copy; where
// mmap is unavailable the file is read into memory once) and are valid until
// the Reader is closed. Keys and captions are copied into Go strings.
type Part struct {
	ID     int    // position in Reader.Parts
	Name   string // parts/NAME.arrow
	Split  string
	Shard  string // the input shard it came from
	N      int    // rows
	Dim    int    // D
	DType  string // "float16" or "float32"
	Marker Marker

	data   []byte
	unmap  func() error
	sr     *ipc.Reader
	rec    arrow.RecordBatch
	keys   *array.String
	labels []int32
	views  []uint8
	capIDs []int32
	caps   []string
	f32    []float32
	f16    []uint16
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

// load reads the Arrow footer and schema and takes zero-copy views of the columns.
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
		return fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	want := Schema(m.Dim, m.DType)
	if !p.sr.Schema().Equal(want) {
		return fmt.Errorf("schema %s, want %s: %w", p.sr.Schema(), want, ErrCorrupt)
	}
	if !p.sr.Next() {
		if err := p.sr.Err(); err != nil {
			return fmt.Errorf("%v: %w", err, ErrCorrupt)
		}
		return fmt.Errorf("no record batch: %w", ErrCorrupt)
	}
	p.rec = p.sr.RecordBatch()
	p.rec.Retain()
	if p.sr.Next() {
		return fmt.Errorf("more than one record batch: %w", ErrCorrupt)
	}
	if err := p.sr.Err(); err != nil {
		return fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	for i, c := range p.rec.Columns() {
		if c.NullN() != 0 {
			return fmt.Errorf("column %s has %d nulls: %w", p.rec.ColumnName(i), c.NullN(), ErrCorrupt)
		}
		if v, ok := c.(interface{ ValidateFull() error }); ok {
			if err := v.ValidateFull(); err != nil {
				return fmt.Errorf("column %s: %v: %w", p.rec.ColumnName(i), err, ErrCorrupt)
			}
		}
	}
	p.N = int(p.rec.NumRows())
	p.keys = p.rec.Column(0).(*array.String)
	p.labels = p.rec.Column(1).(*array.Int32).Int32Values()
	p.views = p.rec.Column(2).(*array.Uint8).Uint8Values()
	dict := p.rec.Column(3).(*array.Dictionary)
	p.capIDs = dict.Indices().(*array.Int32).Int32Values()
	dv := dict.Dictionary().(*array.String)
	p.caps = make([]string, dv.Len())
	for i := range p.caps {
		p.caps[i] = strings.Clone(dv.Value(i))
	}
	fl := p.rec.Column(4).(*array.FixedSizeList)
	vals := fl.ListValues()
	if vals.Len() != p.N*p.Dim {
		return fmt.Errorf("emb holds %d values, want %d×%d: %w", vals.Len(), p.N, p.Dim, ErrCorrupt)
	}
	switch v := vals.(type) {
	case *array.Float32:
		p.f32 = v.Float32Values()
	case *array.Float16:
		h := v.Values()
		if len(h) > 0 {
			p.f16 = unsafe.Slice((*uint16)(unsafe.Pointer(&h[0])), len(h))
		}
	default:
		return fmt.Errorf("emb values of type %s: %w", vals.DataType(), ErrCorrupt)
	}
	if p.f32 == nil && p.f16 == nil {
		p.f32, p.f16 = []float32{}, []uint16{}
	}
	if err := dv.ValidateFull(); err != nil {
		return fmt.Errorf("caption dictionary: %v: %w", err, ErrCorrupt)
	}
	for i, c := range p.capIDs {
		if c < 0 || int(c) >= len(p.caps) {
			return fmt.Errorf("row %d: caption id %d outside the dictionary of %d: %w", i, c, len(p.caps), ErrCorrupt)
		}
	}
	for i, v := range p.views {
		if int(v) >= m.Views {
			return fmt.Errorf("row %d: view %d outside 0..%d: %w", i, v, m.Views-1, ErrCorrupt)
		}
	}
	return nil
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
		return err
	}
	return nil
}

// Scan finds key by reading every part's keys (no index needed; linear in
// the cache size).
func (r *Reader) Scan(key string) (Location, error) {
	for _, p := range r.parts {
		for i := 0; i < p.N; i++ {
			if p.keyView(i) == key && p.views[i] == 0 {
				j := i + 1
				for j < p.N && p.views[j] != 0 && p.keyView(j) == key {
					j++
				}
				return Location{Part: p, Row: i, Views: j - i}, nil
			}
		}
	}
	return Location{}, fmt.Errorf("store: key %q: %w", key, ErrNotFound)
}

// Key is row i's key (a copy, safe after Close).
func (p *Part) Key(i int) string { return strings.Clone(p.keys.Value(i)) }

// keyView is row i's key pointing into the mapping.
func (p *Part) keyView(i int) string { return p.keys.Value(i) }

// Labels (N) are the class labels (iNat category ids), zero-copy.
func (p *Part) Labels() []int32 { return p.labels }

// Views (N) are the view numbers (0 = eval transform), zero-copy.
func (p *Part) Views() []uint8 { return p.views }

// CaptionIDs (N) index Captions, zero-copy.
func (p *Part) CaptionIDs() []int32 { return p.capIDs }

// Captions is the part's caption dictionary (copied at open; small).
func (p *Part) Captions() []string { return p.caps }

// Caption is row i's caption.
func (p *Part) Caption(i int) string { return p.caps[p.capIDs[i]] }

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
