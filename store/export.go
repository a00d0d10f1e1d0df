package store

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ExportOptions tune ExportCLIPRetrieval.
type ExportOptions struct {
	// Split, when set, exports only that split's parts.
	Split string
	// Progress, when not nil, is called after each exported part with the rows so far.
	Progress func(rows int)
}

// ExportStats count what was exported.
type ExportStats struct {
	Files int // pairs of img_emb_N.npy + metadata_N.parquet
	Rows  int
}

// ExportCLIPRetrieval writes the cache in clip-retrieval's layout (what its
// `clip-retrieval inference` writes and `clip-retrieval index` reads):
// OUT/img_emb/img_emb_N.npy, a (rows, D) array of the cache's dtype (<f2 or
// <f4, npy format 1.0), and OUT/metadata/metadata_N.parquet with columns
// image_path, caption, key and label, row for row — one pair per part with
// rows, N counting from 0 in part order. Only view 0 (the eval transform) is
// exported: clip-retrieval expects one embedding per image.
func ExportCLIPRetrieval(dir, out string, opt ExportOptions) (ExportStats, error) {
	var st ExportStats
	r, err := Open(dir, ReadOptions{})
	if err != nil {
		return st, err
	}
	defer r.Close()
	for _, sub := range []string{"img_emb", "metadata"} {
		if err := os.MkdirAll(filepath.Join(out, sub), 0o755); err != nil {
			return st, fmt.Errorf("store: export: %w", err)
		}
	}
	for _, p := range r.Parts() {
		if opt.Split != "" && p.Split != opt.Split {
			continue
		}
		if err := p.CheckKeys(); err != nil {
			return st, err
		}
		if err := p.CheckCaptions(); err != nil {
			return st, err
		}
		var rows []int
		for i, v := range p.Views() {
			if v == 0 {
				rows = append(rows, i)
			}
		}
		if len(rows) == 0 {
			continue
		}
		n := st.Files
		if err := writeNPY(filepath.Join(out, "img_emb", fmt.Sprintf("img_emb_%d.npy", n)), p, rows); err != nil {
			return st, err
		}
		if err := writeMetadata(filepath.Join(out, "metadata", fmt.Sprintf("metadata_%d.parquet", n)), p, rows); err != nil {
			return st, err
		}
		st.Files++
		st.Rows += len(rows)
		if opt.Progress != nil {
			opt.Progress(st.Rows)
		}
	}
	return st, nil
}

// NPYHeader is the npy format 1.0 header of a C-order (rows, cols) array of
// descr ("<f2", "<f4"): magic, version, header length, the dict padded with
// spaces and a newline to a multiple of 64 bytes.
func NPYHeader(descr string, rows, cols int) []byte {
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }", descr, rows, cols)
	total := 10 + len(dict) + 1
	pad := (64 - total%64) % 64
	dict += strings.Repeat(" ", pad) + "\n"
	h := make([]byte, 10, 10+len(dict))
	copy(h, "\x93NUMPY\x01\x00")
	binary.LittleEndian.PutUint16(h[8:], uint16(len(dict)))
	return append(h, dict...)
}

func writeNPY(path string, p *Part, rows []int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	descr := "<f4"
	if p.DType == Float16 {
		descr = "<f2"
	}
	w.Write(NPYHeader(descr, len(rows), p.Dim))
	D := p.Dim
	for _, i := range rows {
		if p.DType == Float16 {
			w.Write(bytesOf(p.f16[i*D : (i+1)*D]))
		} else {
			w.Write(bytesOf(p.f32[i*D : (i+1)*D]))
		}
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: export %s: %w", path, err)
	}
	return nil
}

// MetadataSchema is the schema of the exported metadata parquet files.
var metadataFields = []arrow.Field{
	{Name: "image_path", Type: arrow.BinaryTypes.String},
	{Name: "caption", Type: arrow.BinaryTypes.String},
	{Name: "key", Type: arrow.BinaryTypes.String},
	{Name: "label", Type: arrow.PrimitiveTypes.Int32},
}

func writeMetadata(path string, p *Part, rows []int) error {
	mem := memory.DefaultAllocator
	schema := arrow.NewSchema(metadataFields, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	ip := b.Field(0).(*array.StringBuilder)
	cp := b.Field(1).(*array.StringBuilder)
	kb := b.Field(2).(*array.StringBuilder)
	lb := b.Field(3).(*array.Int32Builder)
	for _, i := range rows {
		k := p.keyView(i)
		ip.Append(p.Shard + "/" + k)
		cp.Append(p.Caption(i))
		kb.Append(k)
		lb.Append(p.labels[i])
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	fw, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy)), pqarrow.DefaultWriterProps())
	if err == nil {
		err = fw.Write(rec)
		if cerr := fw.Close(); err == nil {
			err = cerr
		}
	} else {
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("store: export %s: %w", path, err)
	}
	return nil
}
