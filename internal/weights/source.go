// Package weights binds a model's tensors to the tensors of a file by a name
// table (STYLE.md, ollama's model code: one mapping table, tested without
// files through a fake source). A Source is a safetensors file or an
// in-memory Map; Load reads every binding of a table at once and reports
// every missing, unexpected, mis-shaped or unreadable tensor in one *Error.
// Every tower family loads through it (internal/clip, internal/dinov2,
// internal/swin).
package weights

import (
	"fmt"
	"slices"
	"sort"

	"github.com/litcache/litcache/internal/safetensors"
)

// Source is a set of named tensors (clip.Source is this type).
type Source interface {
	// Names lists every tensor.
	Names() []string
	// Shape is a tensor's shape, false when absent.
	Shape(name string) ([]int, bool)
	// Float32 reads a floating-point tensor converted to float32.
	Float32(name string) ([]float32, error)
}

// IntSource is a Source that can also read integer tensors (buffers such as
// Swin's relative_position_index).
type IntSource interface {
	Source
	// Int64s reads an integer tensor.
	Int64s(name string) ([]int64, error)
}

// File is a safetensors file as a Source.
type File struct{ f *safetensors.File }

var _ IntSource = (*File)(nil)

// Open opens a safetensors file; Close it when done.
func Open(path string) (*File, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	return &File{f}, nil
}

// Close releases the file.
func (s *File) Close() error { return s.f.Close() }

// Names lists the file's tensors in file order.
func (s *File) Names() []string { return s.f.Names() }

// Shape is a tensor's shape.
func (s *File) Shape(name string) ([]int, bool) {
	info, ok := s.f.Info(name)
	return info.Shape, ok
}

// Float32 reads a floating-point tensor as float32.
func (s *File) Float32(name string) ([]float32, error) {
	d, _, err := s.f.Float32(name)
	return d, err
}

// Int64s reads an integer tensor, or a floating-point one holding whole
// numbers (a state dict converted to float as a whole, buffers included).
func (s *File) Int64s(name string) ([]int64, error) {
	info, ok := s.f.Info(name)
	if ok && (info.DType == "F32" || info.DType == "F64" || info.DType == "F16" || info.DType == "BF16") {
		d, _, err := s.f.Float64(name)
		if err != nil {
			return nil, err
		}
		out := make([]int64, len(d))
		for i, v := range d {
			out[i] = int64(v)
			if float64(out[i]) != v {
				return nil, fmt.Errorf("weights: %s: element %d (%g) is not an integer", name, i, v)
			}
		}
		return out, nil
	}
	d, _, err := s.f.Int64s(name)
	return d, err
}

// Tensor is one named float32 tensor in memory.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Map is an in-memory Source: a fake source in tests, or the tensors a
// bundle holds.
type Map map[string]Tensor

var _ IntSource = Map(nil)

// MapOf builds a Map from tensors.
func MapOf(ts []Tensor) Map {
	m := make(Map, len(ts))
	for _, t := range ts {
		m[t.Name] = t
	}
	return m
}

// Names lists the tensors, sorted.
func (m Map) Names() []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Shape is a tensor's shape.
func (m Map) Shape(name string) ([]int, bool) {
	t, ok := m[name]
	return t.Shape, ok
}

// Float32 returns a copy of a tensor's values.
func (m Map) Float32(name string) ([]float32, error) {
	t, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("weights: no tensor %q", name)
	}
	if len(t.Data) != numel(t.Shape) {
		return nil, fmt.Errorf("weights: %s: %d values for shape %v", name, len(t.Data), t.Shape)
	}
	return slices.Clone(t.Data), nil
}

// Int64s returns a tensor's values as integers (they must be whole numbers).
func (m Map) Int64s(name string) ([]int64, error) {
	d, err := m.Float32(name)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(d))
	for i, v := range d {
		out[i] = int64(v)
		if float32(out[i]) != v {
			return nil, fmt.Errorf("weights: %s: element %d (%g) is not an integer", name, i, v)
		}
	}
	return out, nil
}

// Renamed is src with its names rewritten by rename (a file's names seen
// under another spelling, e.g. Meta's chunked "blocks.C.N." as "blocks.N.").
// rename must be one-to-one on src's names.
func Renamed(src Source, rename func(string) string) Source {
	r := renamed{src: src, to: map[string]string{}}
	for _, n := range src.Names() {
		r.to[rename(n)] = n
		r.names = append(r.names, rename(n))
	}
	return r
}

type renamed struct {
	src   Source
	to    map[string]string // new name → source name
	names []string
}

func (r renamed) Names() []string { return slices.Clone(r.names) }
func (r renamed) Shape(name string) ([]int, bool) {
	n, ok := r.to[name]
	if !ok {
		return nil, false
	}
	return r.src.Shape(n)
}
func (r renamed) Float32(name string) ([]float32, error) {
	n, ok := r.to[name]
	if !ok {
		return nil, fmt.Errorf("weights: no tensor %q", name)
	}
	return r.src.Float32(n)
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
