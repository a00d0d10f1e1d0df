// Package safetensors reads and writes the safetensors format
// (https://github.com/huggingface/safetensors): the weights files of HF
// transformers and OpenCLIP. Files are mapped read-only, so opening a
// multi-gigabyte checkpoint costs nothing until a tensor is read; every
// offset is validated on Open, so a damaged file is an error, never a crash.
package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sort"
	"unsafe"

	"github.com/litcache/litcache/internal/half"
)

// File is an open safetensors file. Its methods may be called from several
// goroutines, but not concurrently with Close.
type File struct {
	path   string
	data   []byte // the whole file (mapped, or read for FromBytes)
	unmap  func([]byte) error
	h      *header
	closed bool
}

// Open maps path read-only and validates its header.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("safetensors: %s: not a regular file", path)
	}
	data, unmap, err := mapFile(fd, st.Size())
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: map: %w", path, err)
	}
	h, err := parseHeader(data)
	if err != nil {
		if unmap != nil {
			unmap(data)
		}
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return &File{path: path, data: data, unmap: unmap, h: h}, nil
}

// FromBytes parses a whole safetensors file held in memory. The File reads
// from b without copying; b must not change while the File is in use.
func FromBytes(b []byte) (*File, error) {
	h, err := parseHeader(b)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return &File{path: "<bytes>", data: b, h: h}, nil
}

// Close unmaps the file. Slices returned by Bytes become invalid.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	var err error
	if f.unmap != nil {
		err = f.unmap(f.data)
	}
	f.data = nil
	if err != nil {
		return fmt.Errorf("safetensors: %s: unmap: %w", f.path, err)
	}
	return nil
}

// Path is the file's path ("<bytes>" for FromBytes).
func (f *File) Path() string { return f.path }

// Names lists the tensors in file order (by data offset).
func (f *File) Names() []string { return append([]string(nil), f.h.names...) }

// SortedNames lists the tensors alphabetically.
func (f *File) SortedNames() []string {
	n := f.Names()
	sort.Strings(n)
	return n
}

// Info describes a tensor; ok is false when the file has no tensor of that name.
func (f *File) Info(name string) (TensorInfo, bool) {
	info, ok := f.h.infos[name]
	if ok {
		info.Shape = append([]int{}, info.Shape...)
	}
	return info, ok
}

// Metadata is the header's __metadata__ map (nil when absent), copied.
func (f *File) Metadata() map[string]string {
	if f.h.metadata == nil {
		return nil
	}
	m := make(map[string]string, len(f.h.metadata))
	for k, v := range f.h.metadata {
		m[k] = v
	}
	return m
}

// Bytes is the raw little-endian storage of a tensor, without copying. The
// slice is only valid until Close and must not be written.
func (f *File) Bytes(name string) ([]byte, TensorInfo, error) {
	if f.closed {
		return nil, TensorInfo{}, fmt.Errorf("safetensors: %s: %w", f.path, ErrClosed)
	}
	info, ok := f.Info(name)
	if !ok {
		return nil, TensorInfo{}, fmt.Errorf("safetensors: %s: %q: %w", f.path, name, ErrNotFound)
	}
	off := f.h.dataOff
	return f.data[off+info.Begin : off+info.End : off+info.End], info, nil
}

// Float32 reads a floating-point tensor (F64, F32, F16 or BF16) as float32,
// copied out of the file, with its shape.
func (f *File) Float32(name string) ([]float32, []int, error) {
	b, info, err := f.Bytes(name)
	if err != nil {
		return nil, nil, err
	}
	n := numElems(info)
	out := make([]float32, n)
	switch info.DType {
	case "F32":
		copyLE(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(out))), 4*n), b, 4)
	case "F64":
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case "F16":
		for i := range out {
			out[i] = half.F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case "BF16":
		for i := range out {
			out[i] = half.BF16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	default:
		return nil, nil, f.dtypeErr(name, info.DType, "float32")
	}
	return out, info.Shape, nil
}

// Float64 reads a floating-point tensor (F64, F32, F16 or BF16) as float64.
func (f *File) Float64(name string) ([]float64, []int, error) {
	b, info, err := f.Bytes(name)
	if err != nil {
		return nil, nil, err
	}
	n := numElems(info)
	out := make([]float64, n)
	switch info.DType {
	case "F64":
		copyLE(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(out))), 8*n), b, 8)
	case "F32":
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case "F16":
		for i := range out {
			out[i] = float64(half.F16ToF32(binary.LittleEndian.Uint16(b[2*i:])))
		}
	case "BF16":
		for i := range out {
			out[i] = float64(half.BF16ToF32(binary.LittleEndian.Uint16(b[2*i:])))
		}
	default:
		return nil, nil, f.dtypeErr(name, info.DType, "float64")
	}
	return out, info.Shape, nil
}

// Int64s reads an integer or BOOL tensor as int64; a U64 value beyond the
// int64 range is an error.
func (f *File) Int64s(name string) ([]int64, []int, error) {
	b, info, err := f.Bytes(name)
	if err != nil {
		return nil, nil, err
	}
	out := make([]int64, numElems(info))
	for i := range out {
		v, ok, err := intAt(b, info.DType, i)
		if err != nil {
			return nil, nil, f.dtypeErr(name, info.DType, "int64")
		}
		if !ok {
			return nil, nil, fmt.Errorf("safetensors: %s: %q: element %d does not fit int64: %w", f.path, name, i, ErrDType)
		}
		out[i] = v
	}
	return out, info.Shape, nil
}

// Int32s reads an integer or BOOL tensor as int32; a value beyond the int32
// range is an error naming the element.
func (f *File) Int32s(name string) ([]int32, []int, error) {
	b, info, err := f.Bytes(name)
	if err != nil {
		return nil, nil, err
	}
	out := make([]int32, numElems(info))
	for i := range out {
		v, ok, err := intAt(b, info.DType, i)
		if err != nil {
			return nil, nil, f.dtypeErr(name, info.DType, "int32")
		}
		if !ok || v < math.MinInt32 || v > math.MaxInt32 {
			return nil, nil, fmt.Errorf("safetensors: %s: %q: element %d does not fit int32: %w", f.path, name, i, ErrDType)
		}
		out[i] = int32(v)
	}
	return out, info.Shape, nil
}

func (f *File) dtypeErr(name, dtype, want string) error {
	return fmt.Errorf("safetensors: %s: %q is %s, cannot read as %s: %w", f.path, name, dtype, want, ErrDType)
}

// intAt decodes element i of an integer tensor; ok is false when a U64
// overflows int64; err is set for a non-integer dtype.
func intAt(b []byte, dtype string, i int) (v int64, ok bool, err error) {
	switch dtype {
	case "I64":
		return int64(binary.LittleEndian.Uint64(b[8*i:])), true, nil
	case "U64":
		u := binary.LittleEndian.Uint64(b[8*i:])
		return int64(u), u <= math.MaxInt64, nil
	case "I32":
		return int64(int32(binary.LittleEndian.Uint32(b[4*i:]))), true, nil
	case "U32":
		return int64(binary.LittleEndian.Uint32(b[4*i:])), true, nil
	case "I16":
		return int64(int16(binary.LittleEndian.Uint16(b[2*i:]))), true, nil
	case "U16":
		return int64(binary.LittleEndian.Uint16(b[2*i:])), true, nil
	case "I8":
		return int64(int8(b[i])), true, nil
	case "U8", "BOOL":
		return int64(b[i]), true, nil
	}
	return 0, false, ErrDType
}

func numElems(info TensorInfo) int {
	n := 1
	for _, d := range info.Shape {
		n *= d
	}
	return n
}

// copyLE copies little-endian elements of size bytes from src into dst, which
// is the byte view of a native slice: a plain copy on little-endian hosts,
// a byte swap per element otherwise.
func copyLE(dst, src []byte, size int) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		copy(dst, src)
		return
	}
	for i := 0; i+size <= len(src); i += size {
		for j := 0; j < size; j++ {
			dst[i+j] = src[i+size-1-j]
		}
	}
}
