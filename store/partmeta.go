package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// Schema metadata of a part. A part names what made it in its own Arrow
// schema, so that it says so wherever it is read (pyarrow shows it as
// schema.metadata) and a marker or manifest can be checked against it.
const (
	// MetaFingerprint holds the image-tower fingerprint.
	MetaFingerprint = "litcache.fingerprint"
	// MetaProducer holds the producer, as Producer.String.
	MetaProducer = "litcache.producer"
	// MetaPart holds the PartMeta as JSON.
	MetaPart = "litcache.part"
)

// PartMeta is what a part records about itself in its schema metadata: the
// marker's fields that are known before the file is written.
type PartMeta struct {
	Name        string   `json:"name"`
	Split       string   `json:"split"`
	Shard       string   `json:"shard"`
	Source      Source   `json:"source"`
	Fingerprint string   `json:"fingerprint"`
	Model       string   `json:"model"`
	Dim         int      `json:"dim"`
	DType       string   `json:"dtype"`
	Views       int      `json:"views"`
	Normalized  bool     `json:"normalized"`
	Producer    Producer `json:"producer"`
	Samples     int      `json:"samples"`
	Rows        int      `json:"rows"`
	Rejects     int      `json:"rejects"`
}

// schema is the part's Arrow schema: Schema with the metadata.
func (w *PartWriter) schema() *arrow.Schema {
	m := w.c.m
	pm := PartMeta{Name: w.name, Split: w.split, Shard: w.shard, Source: w.source,
		Fingerprint: m.Fingerprint, Model: m.Model, Dim: m.Dim, DType: m.DType, Views: m.Views, Normalized: m.Normalized,
		Producer: m.Producer, Samples: w.samples, Rows: len(w.keys), Rejects: w.nrejects}
	b, _ := json.Marshal(pm)
	md := arrow.NewMetadata([]string{MetaFingerprint, MetaProducer, MetaPart}, []string{m.Fingerprint, m.Producer.String(), string(b)})
	plain := Schema(m.Dim, m.DType)
	return arrow.NewSchema(plain.Fields(), &md)
}

// partMetaOf reads a schema's PartMeta; ok is false for a part written
// before parts carried it.
func partMetaOf(s *arrow.Schema) (pm PartMeta, ok bool, err error) {
	md := s.Metadata()
	i := md.FindKey(MetaPart)
	if i < 0 {
		return pm, false, nil
	}
	if err := json.Unmarshal([]byte(md.Values()[i]), &pm); err != nil {
		return pm, false, fmt.Errorf("schema metadata %s: %v: %w", MetaPart, err, ErrCorrupt)
	}
	return pm, true, nil
}

// ReadPartMeta reads a part file's footer and schema (not its rows) and
// returns what the part says made it; ok is false for a part written before
// parts carried it.
func ReadPartMeta(path string) (pm PartMeta, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return pm, false, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	s, _, err := readFooter(f)
	if err != nil {
		return pm, false, fmt.Errorf("store: %s: %w", path, err)
	}
	return partMetaOf(s)
}

// readFooter opens an Arrow file by its footer: the schema and the number
// of record batches, without reading them.
func readFooter(f ipc.ReadAtSeeker) (s *arrow.Schema, batches int, err error) {
	defer func() {
		// arrow-go panics on some malformed footers; a damaged file is an error.
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed arrow footer: %v: %w", r, ErrCorrupt)
		}
	}()
	if err := checkFooter(f); err != nil {
		return nil, 0, err
	}
	r, err := ipc.NewFileReader(f)
	if err != nil {
		return nil, 0, fmt.Errorf("arrow footer: %v: %w", err, ErrCorrupt)
	}
	defer r.Close()
	return r.Schema(), r.NumRecords(), nil
}

// checkFooter reads an Arrow file's footer and checks its flatbuffer, and
// the dictionary messages it points to, before arrow-go sizes allocations
// from them (arrowfb.go).
func checkFooter(f ipc.ReadAtSeeker) error {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	tail := make([]byte, 10)
	if size < int64(len(tail))+8 {
		return fmt.Errorf("%d bytes: too short for an Arrow file: %w", size, ErrCorrupt)
	}
	if _, err := f.ReadAt(tail, size-10); err != nil {
		return err
	}
	if string(tail[4:]) != string(arrowMagic) {
		return fmt.Errorf("no Arrow magic at the end: %w", ErrCorrupt)
	}
	n := int64(binary.LittleEndian.Uint32(tail))
	if n <= 0 || n > size-10-8 {
		return fmt.Errorf("footer of %d bytes in a file of %d: %w", n, size, ErrCorrupt)
	}
	footer := make([]byte, n)
	if _, err := f.ReadAt(footer, size-10-n); err != nil {
		return err
	}
	return checkFooterFB(footer, f, size)
}

// CheckPart checks finished part NAME against its marker the cheap way: the
// file's size, its Arrow footer (one record batch, the cache's schema) and
// the fingerprint in its schema metadata; with full, also the sha256 of the
// whole file. A rerun of extract calls it on each done part, and redoes one
// that fails (Redo). A part that does not pass wraps ErrCorrupt.
func (c *Cache) CheckPart(mk Marker, full bool) error {
	path := partPath(c.dir, mk.Name)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: part %s: %v: %w", mk.Name, err, ErrCorrupt)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: part %s: %w", mk.Name, err)
	}
	if st.Size() != mk.Size {
		return fmt.Errorf("store: part %s: %d bytes, marker says %d: %w", mk.Name, st.Size(), mk.Size, ErrCorrupt)
	}
	s, batches, err := readFooter(f)
	if err != nil {
		return fmt.Errorf("store: part %s: %w", mk.Name, err)
	}
	m := c.m
	if batches != 1 || !s.Equal(Schema(m.Dim, m.DType)) {
		return fmt.Errorf("store: part %s: %d record batches of schema %s, want 1 of %s: %w", mk.Name, batches, s, Schema(m.Dim, m.DType), ErrCorrupt)
	}
	if pm, ok, err := partMetaOf(s); err != nil {
		return fmt.Errorf("store: part %s: %w", mk.Name, err)
	} else if ok && (mk.Fingerprint != "" && pm.Fingerprint != mk.Fingerprint || pm.Name != mk.Name || pm.Rows != mk.Rows) {
		return fmt.Errorf("store: part %s says it is part %s of %d rows by tower %s; its marker says %s, %d rows, %s: %w",
			mk.Name, pm.Name, pm.Rows, pm.Fingerprint, mk.Name, mk.Rows, mk.Fingerprint, ErrCorrupt)
	}
	if full {
		sum, _, err := hashFile(path, func(int64) {})
		if err != nil {
			return fmt.Errorf("store: part %s: %w", mk.Name, err)
		}
		if sum != mk.SHA256 {
			return fmt.Errorf("store: part %s: sha256 %s, marker says %s: %w", mk.Name, sum, mk.SHA256, ErrCorrupt)
		}
	}
	return nil
}

// CheckSource tells whether the input shard at path is the one part mk was
// made from (same size and content hash; the folder may differ), and
// returns its identity. A marker that does not record its source (an older
// build's) passes. A different shard wraps ErrSourceMismatch and names both
// files.
func CheckSource(mk Marker, path string) (Source, error) {
	src, err := SourceOf(path)
	if err != nil {
		return src, err
	}
	if mk.Source.Known() && !mk.Source.Same(src) {
		return src, fmt.Errorf("store: part %s was made from %s, but %s (%d bytes) is another shard of the same name; give it another file name or --split, or another cache: %w",
			mk.Name, mk.Source, src.Path, src.Size, ErrSourceMismatch)
	}
	return src, nil
}
