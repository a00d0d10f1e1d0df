package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/litcache/litcache/internal/half"
)

// Tensor is one tensor to write: raw little-endian bytes of DType laid out
// row-major in Shape. The helpers F32, F16, BF16, F64, I32 and I64 build it
// from Go slices.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
	// Stream, when not nil, replaces Data: Write calls it once, when it
	// reaches the tensor, to write exactly the tensor's bytes to w. A caller
	// saving many large tensors (a model, optimizer moments) converts each
	// as it is written instead of holding a byte copy of all of them.
	Stream func(w io.Writer) error
}

// byteLen is the tensor's size in bytes: len(Data), or what its shape and
// dtype need when it streams.
func (t Tensor) byteLen() int {
	if t.Stream == nil {
		return len(t.Data)
	}
	size, _ := dtypeSize(t.DType)
	n := size
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// writeData writes the tensor's bytes to w, checking a stream's count.
func (t Tensor) writeData(w io.Writer) error {
	if t.Stream == nil {
		_, err := w.Write(t.Data)
		return err
	}
	cw := &countingWriter{w: w}
	if err := t.Stream(cw); err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if want := t.byteLen(); cw.n != want {
		return fmt.Errorf("tensor %q: stream wrote %d bytes, shape %v of %s needs %d", t.Name, cw.n, t.Shape, t.DType, want)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

// Write stores tensors and metadata (may be nil) at path atomically: the file
// is written to a temporary file in the same folder, synced, and renamed over
// path, so a reader never sees a half-written file. The header is padded with
// spaces to a multiple of 8 bytes, as the reference writer does, and tensors
// are laid out by decreasing element size, then name, which keeps every
// tensor aligned to its element size.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	hdr, order, err := buildHeader(tensors, metadata)
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<20)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(hdr)))
	w.Write(n[:])
	w.Write(hdr)
	for _, i := range order {
		if err := tensors[i].writeData(w); err != nil {
			return fmt.Errorf("safetensors: %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("safetensors: %s: write: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("safetensors: %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("safetensors: %s: close: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("safetensors: %s: %w", path, err)
	}
	ok = true
	// Make the rename itself durable; a failure here leaves a complete file.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Marshal returns the bytes of a safetensors file holding tensors and metadata.
func Marshal(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	hdr, order, err := buildHeader(tensors, metadata)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	size := 8 + len(hdr)
	for _, t := range tensors {
		size += t.byteLen()
	}
	buf := bytes.NewBuffer(make([]byte, 8, size))
	binary.LittleEndian.PutUint64(buf.Bytes(), uint64(len(hdr)))
	buf.Write(hdr)
	for _, i := range order {
		if err := tensors[i].writeData(buf); err != nil {
			return nil, fmt.Errorf("safetensors: %w", err)
		}
	}
	return buf.Bytes(), nil
}

type headerEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// buildHeader validates the tensors and returns the padded header JSON and
// the order in which their data follows it.
func buildHeader(tensors []Tensor, metadata map[string]string) ([]byte, []int, error) {
	entries := make(map[string]any, len(tensors)+1)
	if metadata != nil {
		entries[metadataKey] = metadata
	}
	order := make([]int, len(tensors))
	for i, t := range tensors {
		order[i] = i
		size, ok := dtypeSize(t.DType)
		switch {
		case t.Name == metadataKey:
			return nil, nil, fmt.Errorf("tensor %d: invalid name %q", i, t.Name)
		case !ok:
			return nil, nil, fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		if _, dup := entries[t.Name]; dup {
			return nil, nil, fmt.Errorf("tensor %q: duplicate name", t.Name)
		}
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
			n *= d
		}
		if t.Stream != nil && t.Data != nil {
			return nil, nil, fmt.Errorf("tensor %q: both Data and Stream set", t.Name)
		}
		if n*size != t.byteLen() {
			return nil, nil, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, data has %d", t.Name, t.Shape, t.DType, n*size, len(t.Data))
		}
		entries[t.Name] = nil // placeholder for the duplicate check
	}
	sort.SliceStable(order, func(a, b int) bool {
		sa, _ := dtypeSize(tensors[order[a]].DType)
		sb, _ := dtypeSize(tensors[order[b]].DType)
		if sa != sb {
			return sa > sb
		}
		return tensors[order[a]].Name < tensors[order[b]].Name
	})
	var off int64
	for _, i := range order {
		t := tensors[i]
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		end := off + int64(t.byteLen())
		entries[t.Name] = headerEntry{DType: t.DType, Shape: shape, DataOffsets: [2]int64{off, end}}
		off = end
	}
	hdr, err := json.Marshal(entries)
	if err != nil {
		return nil, nil, fmt.Errorf("header: %w", err)
	}
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	return hdr, order, nil
}

// F32 makes an F32 tensor from float32 values.
func F32(name string, shape []int, data []float32) Tensor {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Tensor{Name: name, DType: "F32", Shape: shape, Data: b}
}

// F32Lazy makes an F32 tensor whose values are asked for only when Write
// reaches it, and written through a small buffer: values may return the same
// slice for every tensor (Write is done with one before it asks for the
// next), so saving a model needs one tensor's worth of memory, not the model's.
func F32Lazy(name string, shape []int, values func() []float32) Tensor {
	return Tensor{Name: name, DType: "F32", Shape: shape, Stream: func(w io.Writer) error {
		var buf [4 << 10]byte
		vals := values()
		for len(vals) > 0 {
			n := min(len(vals), len(buf)/4)
			for i, v := range vals[:n] {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			if _, err := w.Write(buf[:4*n]); err != nil {
				return err
			}
			vals = vals[n:]
		}
		return nil
	}}
}

// F64 makes an F64 tensor from float64 values.
func F64(name string, shape []int, data []float64) Tensor {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return Tensor{Name: name, DType: "F64", Shape: shape, Data: b}
}

// F16 makes an F16 tensor from float32 values, rounding to nearest even.
func F16(name string, shape []int, data []float32) Tensor {
	b := make([]byte, 2*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint16(b[2*i:], half.F32ToF16(v))
	}
	return Tensor{Name: name, DType: "F16", Shape: shape, Data: b}
}

// BF16 makes a BF16 tensor from float32 values, rounding to nearest even.
func BF16(name string, shape []int, data []float32) Tensor {
	b := make([]byte, 2*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint16(b[2*i:], half.F32ToBF16(v))
	}
	return Tensor{Name: name, DType: "BF16", Shape: shape, Data: b}
}

// I32 makes an I32 tensor from int32 values.
func I32(name string, shape []int, data []int32) Tensor {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return Tensor{Name: name, DType: "I32", Shape: shape, Data: b}
}

// I64 makes an I64 tensor from int64 values.
func I64(name string, shape []int, data []int64) Tensor {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return Tensor{Name: name, DType: "I64", Shape: shape, Data: b}
}
