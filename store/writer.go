package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/litcache/litcache/internal/half"
)

// Cache is a cache directory opened for writing parts.
type Cache struct {
	dir string
	m   Manifest
	opt CreateOptions

	bindMu sync.Mutex
	bound  bool // a part of this Cache was committed: the manifest is ours
}

// CreateOptions tune CreateWith.
type CreateOptions struct {
	// AllowMixedProducers lets this writer add parts whose producer differs
	// from the cache's (see Producer); each such marker says so.
	AllowMixedProducers bool
}

// Create is CreateWith with the default options.
func Create(dir string, m Manifest) (*Cache, error) { return CreateWith(dir, m, CreateOptions{}) }

// CreateWith opens DIR for writing rows described by m (its identity fields
// and producer), creating the folder when absent. When the cache already
// holds parts, their tower, dim, dtype, views and normalisation must equal
// m's (ErrFingerprint / ErrIncompatible otherwise, naming both sides), and
// so must their producer unless opt allows mixing (ErrMixedProducers). A
// lost manifest.json is rebuilt from the markers for this check.
//
// Nothing is written but the folders: the manifest is written with the first
// committed part (see bind), so a run that fails before that leaves nothing
// to refuse a retry. Several workers may call CreateWith on the same DIR at
// once; the first to commit a part binds the cache and the others' commits
// are checked again then.
func CreateWith(dir string, m Manifest, opt CreateOptions) (*Cache, error) {
	m.SchemaVersion = SchemaVersion
	if err := m.Validate(); err != nil {
		return nil, err
	}
	for _, sub := range []string{"", "parts", "done", "rejects", "locks"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", dir, err)
		}
	}
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	if err := st.admits(dir, m, opt.AllowMixedProducers); err != nil {
		return nil, err
	}
	return &Cache{dir: dir, m: m, opt: opt}, nil
}

// Dir is the cache directory.
func (c *Cache) Dir() string { return c.dir }

// Manifest is the identity this writer's rows have (as given to CreateWith;
// no counts).
func (c *Cache) Manifest() Manifest { return c.m }

// Done returns part NAME's marker when the part is complete.
func (c *Cache) Done(name string) (Marker, bool, error) { return readMarker(c.dir, name) }

// NewPart starts writing part NAME from the given split and input shard.
// Whatever an interrupted run left for NAME (a part without a marker, temp
// files, a rejects file) is removed first; a finished part (one with a
// marker) is an error: check Done first.
func (c *Cache) NewPart(name, split, shard string) (*PartWriter, error) {
	if _, ok, err := c.Done(name); err != nil {
		return nil, err
	} else if ok {
		return nil, fmt.Errorf("store: part %s is already complete (done/%s.json exists)", name, name)
	}
	for _, p := range []string{partPath(c.dir, name), partPath(c.dir, name) + ".tmp", rejectsPath(c.dir, name), rejectsPath(c.dir, name) + ".tmp"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store: part %s: remove leftover: %w", name, err)
		}
	}
	return &PartWriter{c: c, name: name, split: split, shard: shard, dict: map[string]int32{}}, nil
}

// Redo drops finished part NAME so that it can be made again: its marker
// goes first (from then on the part does not count), then the part and its
// rejects. A rerun calls it for a part that fails CheckPart.
func (c *Cache) Redo(name string) error {
	if err := os.Remove(markerPath(c.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: part %s: %w", name, err)
	}
	if err := syncDir(filepath.Join(c.dir, "done")); err != nil {
		return err
	}
	for _, p := range []string{partPath(c.dir, name), rejectsPath(c.dir, name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: part %s: %w", name, err)
		}
	}
	return nil
}

// PartWriter collects the rows of one part in memory (one input shard's
// worth) and writes them with Commit.
type PartWriter struct {
	c            *Cache
	name, split  string
	shard        string
	keys         []string
	labels       []int32
	views        []uint8
	capIDs       []int32
	captions     []string
	dict         map[string]int32
	f32          []float32 // (N,D) when dtype float32
	f16          []uint16  // (N,D) when dtype float16
	samples      int
	rejects      []byte // JSON lines
	nrejects     int
	lastKey      string
	lastView     int
	haveLastView bool
	lines        int // of rejects
	source       Source
	damage       *Damage
}

// SetSource records the input shard's identity (SourceOf) in the marker.
func (w *PartWriter) SetSource(s Source) { w.source = s }

// Rows is the number of rows added so far.
func (w *PartWriter) Rows() int { return len(w.keys) }

// Add appends one row: emb (D) is the embedding of view `view` of sample
// key. A sample's views must be added consecutively, view 0 first.
func (w *PartWriter) Add(key string, label int32, view int, caption string, emb []float32) error {
	m := w.c.m
	if len(emb) != m.Dim {
		return fmt.Errorf("store: part %s: key %q: embedding has %d values, cache dim is %d", w.name, key, len(emb), m.Dim)
	}
	if view < 0 || view >= m.Views {
		return fmt.Errorf("store: part %s: key %q: view %d outside 0..%d", w.name, key, view, m.Views-1)
	}
	want := 0
	if w.haveLastView && w.lastKey == key {
		want = w.lastView + 1
	}
	if view != want {
		return fmt.Errorf("store: part %s: key %q: view %d added where view %d was due", w.name, key, view, want)
	}
	if view == 0 {
		w.samples++
	}
	w.lastKey, w.lastView, w.haveLastView = key, view, true
	id, ok := w.dict[caption]
	if !ok {
		id = int32(len(w.captions))
		w.dict[caption] = id
		w.captions = append(w.captions, caption)
	}
	w.keys = append(w.keys, key)
	w.labels = append(w.labels, label)
	w.views = append(w.views, uint8(view))
	w.capIDs = append(w.capIDs, id)
	if m.DType == Float16 {
		n := len(w.f16)
		w.f16 = append(w.f16, make([]uint16, m.Dim)...)
		half.F32ToF16s(w.f16[n:], emb)
	} else {
		w.f32 = append(w.f32, emb...)
	}
	return nil
}

// Reject records a sample that could not be embedded and why.
func (w *PartWriter) Reject(key, reason string) {
	w.addReject(Reject{Key: key, Reason: reason})
	w.nrejects++
	w.samples++
}

// RejectMember records a member of the shard left out of every sample (an
// unsafe name, a link, …): name as stored, key when it gives one, offset of
// its header. It counts as one rejected sample.
func (w *PartWriter) RejectMember(name, key string, offset int64, reason string) {
	w.addReject(Reject{Kind: KindMember, Key: key, Member: name, Offset: offset, Reason: reason})
	w.nrejects++
	w.samples++
}

// Damaged records that the shard ended early: one rejects line, and the
// samples it never gave (d.Lost) counted as samples and rejects.
func (w *PartWriter) Damaged(d Damage) {
	w.damage = &d
	w.addReject(Reject{Kind: KindDamage, Key: d.Key, After: d.After, Offset: d.Offset, Lost: d.Lost,
		Reason: fmt.Sprintf("%s; %d samples never read (%s)", d.Reason, d.Lost, d.How)})
	w.samples += d.Lost
	w.nrejects += d.Lost
}

func (w *PartWriter) addReject(r Reject) {
	r.Shard, r.Part = w.shard, w.name
	b, _ := json.Marshal(r)
	w.rejects = append(append(w.rejects, b...), '\n')
	w.lines++
}

// Abort drops the part (nothing was written yet; leftovers of a failed
// Commit are removed).
func (w *PartWriter) Abort() {
	os.Remove(partPath(w.c.dir, w.name) + ".tmp")
	os.Remove(rejectsPath(w.c.dir, w.name) + ".tmp")
}

// Hooks let tests stop a commit between its steps (to simulate a crash).
// Each is called, when not nil, after the step it names.
type Hooks struct {
	AfterPartTmp    func() // parts/NAME.arrow.tmp written and synced
	AfterPartRename func() // renamed to parts/NAME.arrow
	AfterRejects    func() // rejects/NAME.jsonl in place
	AfterMarker     func() // done/NAME.json in place
}

// Commit writes the part: parts/NAME.arrow.tmp → fsync → rename, then
// rejects/NAME.jsonl the same way, then the done/NAME.json marker, each
// followed by an fsync of its directory. worker/workers are recorded in the
// marker. The Cache's first commit also writes manifest.json, with its
// marker under the manifest lock (see bind); it fails, leaving no part, when
// another tower's or producer's part was committed since CreateWith.
func (w *PartWriter) Commit(worker, workers int, hooks *Hooks) (Marker, error) {
	if hooks == nil {
		hooks = &Hooks{}
	}
	call := func(f func()) {
		if f != nil {
			f()
		}
	}
	dir, name := w.c.dir, w.name
	size, sum, err := w.writeArrow(partPath(dir, name) + ".tmp")
	if err != nil {
		w.Abort()
		return Marker{}, err
	}
	call(hooks.AfterPartTmp)
	if err := os.Rename(partPath(dir, name)+".tmp", partPath(dir, name)); err != nil {
		w.Abort()
		return Marker{}, fmt.Errorf("store: part %s: %w", name, err)
	}
	if err := syncDir(filepath.Join(dir, "parts")); err != nil {
		return Marker{}, err
	}
	call(hooks.AfterPartRename)
	if w.lines > 0 {
		if err := atomicWrite(dir, filepath.Join("rejects", name+".jsonl"), w.rejects); err != nil {
			return Marker{}, err
		}
	}
	call(hooks.AfterRejects)
	mk := w.marker(size, sum, worker, workers)
	b, err := json.MarshalIndent(mk, "", "  ")
	if err != nil {
		return mk, fmt.Errorf("store: marker %s: %w", name, err)
	}
	// The first commit binds the cache: manifest and marker under the
	// manifest lock, after checking the rows may still join.
	c := w.c
	c.bindMu.Lock()
	defer c.bindMu.Unlock()
	unlock := func() error { return nil }
	if !c.bound {
		if unlock, err = c.bind(); err != nil {
			// Refused (another tower or producer committed first): the part
			// has no marker and is ours alone, so it goes.
			os.Remove(partPath(dir, name))
			os.Remove(rejectsPath(dir, name))
			return mk, fmt.Errorf("store: part %s: %w", name, err)
		}
	}
	err = atomicWrite(dir, filepath.Join("done", name+".json"), b)
	if uerr := unlock(); err == nil && uerr != nil {
		err = fmt.Errorf("store: manifest lock: %w", uerr)
	}
	if err != nil {
		return mk, err
	}
	c.bound = true
	call(hooks.AfterMarker)
	return mk, nil
}

// marker is the done/ marker of the part as written.
func (w *PartWriter) marker(size int64, sum string, worker, workers int) Marker {
	m := w.c.m
	mk := Marker{Name: w.name, Split: w.split, Shard: w.shard, Samples: w.samples, Rows: len(w.keys),
		Rejects: w.nrejects, Size: size, SHA256: sum, Worker: worker, Workers: workers,
		Damage: w.damage, Source: w.source,
		Fingerprint: m.Fingerprint, Model: m.Model, Tower: m.Tower, Dim: m.Dim, DType: m.DType, Views: m.Views, Normalized: m.Normalized,
		Producer: m.Producer, MixedProducersAllowed: w.c.opt.AllowMixedProducers,
		Committed: time.Now().UTC().Format(time.RFC3339Nano)}
	if w.damage != nil {
		mk.Lost = w.damage.Lost
	}
	return mk
}

// Schema is the Arrow schema of a part with embeddings of width dim.
func Schema(dim int, dtype string) *arrow.Schema {
	var et arrow.DataType = arrow.PrimitiveTypes.Float32
	if dtype == Float16 {
		et = arrow.FixedWidthTypes.Float16
	}
	return arrow.NewSchema([]arrow.Field{
		{Name: "key", Type: arrow.BinaryTypes.String},
		{Name: "label", Type: arrow.PrimitiveTypes.Int32},
		{Name: "view", Type: arrow.PrimitiveTypes.Uint8},
		{Name: "caption", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}},
		{Name: "emb", Type: arrow.FixedSizeListOfNonNullable(int32(dim), et)},
	}, nil)
}

// writeArrow writes the rows as one record batch of an uncompressed Arrow
// IPC file at path, synced; it returns the size and sha256 of the file.
func (w *PartWriter) writeArrow(path string) (int64, string, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, "", fmt.Errorf("store: part %s: %w", w.name, err)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	err = w.encode(cw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, "", fmt.Errorf("store: part %s: write arrow: %w", w.name, err)
	}
	return cw.n, hex.EncodeToString(h.Sum(nil)), nil
}

// encode writes the rows as an Arrow IPC file to dst.
func (w *PartWriter) encode(dst io.Writer) error {
	m := w.c.m
	n := len(w.keys)
	mem := memory.DefaultAllocator
	schema := w.schema()

	kb := array.NewStringBuilder(mem)
	defer kb.Release()
	kb.AppendValues(w.keys, nil)
	keys := kb.NewArray()
	defer keys.Release()

	labels := array.NewData(arrow.PrimitiveTypes.Int32, n, []*memory.Buffer{nil, memory.NewBufferBytes(bytesOf(w.labels))}, nil, 0, 0)
	defer labels.Release()
	views := array.NewData(arrow.PrimitiveTypes.Uint8, n, []*memory.Buffer{nil, memory.NewBufferBytes(w.views)}, nil, 0, 0)
	defer views.Release()

	db := array.NewStringBuilder(mem)
	defer db.Release()
	db.AppendValues(w.captions, nil)
	dict := db.NewArray()
	defer dict.Release()
	idx := array.NewInt32Data(array.NewData(arrow.PrimitiveTypes.Int32, n, []*memory.Buffer{nil, memory.NewBufferBytes(bytesOf(w.capIDs))}, nil, 0, 0))
	defer idx.Release()
	caps := array.NewDictionaryArray(schema.Field(3).Type, idx, dict)
	defer caps.Release()

	var vals arrow.ArrayData
	if m.DType == Float16 {
		vals = array.NewData(arrow.FixedWidthTypes.Float16, n*m.Dim, []*memory.Buffer{nil, memory.NewBufferBytes(bytesOf(w.f16))}, nil, 0, 0)
	} else {
		vals = array.NewData(arrow.PrimitiveTypes.Float32, n*m.Dim, []*memory.Buffer{nil, memory.NewBufferBytes(bytesOf(w.f32))}, nil, 0, 0)
	}
	defer vals.Release()
	embData := array.NewData(schema.Field(4).Type, n, []*memory.Buffer{nil}, []arrow.ArrayData{vals}, 0, 0)
	defer embData.Release()
	emb := array.NewFixedSizeListData(embData)
	defer emb.Release()
	lab := array.MakeFromData(labels)
	defer lab.Release()
	vw := array.MakeFromData(views)
	defer vw.Release()

	rec := array.NewRecordBatch(schema, []arrow.Array{keys, lab, vw, caps, emb}, int64(n))
	defer rec.Release()

	fw, err := ipc.NewFileWriter(dst, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err != nil {
		return err
	}
	err = fw.Write(rec)
	if cerr := fw.Close(); err == nil {
		err = cerr
	}
	return err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// bytesOf views a slice of fixed-size numbers as its bytes (little-endian host).
func bytesOf[T int32 | uint16 | float32 | uint8](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(z)))
}
