package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"unicode/utf8"
)

// File layout (https://github.com/huggingface/safetensors):
//
//	[8 bytes: N, little-endian u64][N bytes: JSON header][data region]
//
// The header maps each tensor name to {"dtype", "shape", "data_offsets":
// [begin, end]} with offsets relative to the data region, plus an optional
// "__metadata__" object of string → string.

// maxHeaderSize is the reference implementation's MAX_HEADER_SIZE: a larger
// header is refused before anything is allocated.
const maxHeaderSize = 100_000_000

const metadataKey = "__metadata__"

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	DType string // "F32", "BF16", "I64", … as the format spells it
	Shape []int  // empty for a scalar
	// Begin and End are the tensor's byte range in the data region.
	Begin, End int64
}

// header is a parsed and validated header.
type header struct {
	names    []string // sorted by begin offset, i.e. file order
	infos    map[string]TensorInfo
	metadata map[string]string
	dataOff  int64 // where the data region starts in the file
}

type rawInfo struct {
	DType       string
	Shape       []int64
	DataOffsets []int64
}

// parseHeader reads and validates the header of a file of size bytes whose
// first bytes are b (b holds at least the whole header when it is valid).
// The checks follow the reference implementation: the tensors' byte ranges
// must tile the data region exactly, in some order, without gaps or overlaps.
func parseHeader(b []byte) (*header, error) {
	size := int64(len(b))
	if size < 8 {
		return nil, fmt.Errorf("%w: %d bytes, too short for the 8-byte header length", ErrFormat, size)
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n > maxHeaderSize {
		return nil, fmt.Errorf("%w: header length %d exceeds the limit of %d bytes", ErrFormat, n, maxHeaderSize)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("%w: header length %d runs past the end of the file (%d bytes after the length): truncated?", ErrFormat, n, size-8)
	}
	hb := b[8 : 8+n]
	if len(hb) == 0 || hb[0] != '{' {
		return nil, fmt.Errorf("%w: header does not start with '{'", ErrFormat)
	}
	if !utf8.Valid(hb) {
		return nil, fmt.Errorf("%w: header is not valid UTF-8", ErrFormat)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(hb))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: header JSON: %v", ErrFormat, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: header JSON is null", ErrFormat)
	}
	// Only padding (spaces, as the reference writer pads) may follow the object.
	if rest := bytes.TrimRight(hb[dec.InputOffset():], " \t\r\n\x00"); len(rest) != 0 {
		return nil, fmt.Errorf("%w: header JSON: trailing bytes after the object", ErrFormat)
	}
	h := &header{infos: make(map[string]TensorInfo, len(raw)), dataOff: 8 + int64(n)}
	dataLen := size - h.dataOff
	for name, msg := range raw {
		if name == metadataKey {
			if err := json.Unmarshal(msg, &h.metadata); err != nil {
				return nil, fmt.Errorf("%w: header %s: %v", ErrFormat, metadataKey, err)
			}
			continue
		}
		ri, err := decodeEntry(msg)
		if err != nil {
			return nil, fmt.Errorf("%w: header entry %q: %v", ErrFormat, name, err)
		}
		info, err := checkInfo(name, ri, dataLen)
		if err != nil {
			return nil, err
		}
		h.infos[name] = info
		h.names = append(h.names, name)
	}
	sort.Slice(h.names, func(i, j int) bool {
		a, b := h.infos[h.names[i]], h.infos[h.names[j]]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		if a.End != b.End {
			return a.End < b.End
		}
		return h.names[i] < h.names[j]
	})
	var pos int64
	prev := ""
	for _, name := range h.names {
		info := h.infos[name]
		switch {
		case info.Begin < pos:
			return nil, fmt.Errorf("%w: tensor %q bytes [%d,%d) overlap tensor %q (ends at %d)", ErrFormat, name, info.Begin, info.End, prev, pos)
		case info.Begin > pos:
			return nil, fmt.Errorf("%w: gap of %d bytes in the data region before tensor %q at offset %d", ErrFormat, info.Begin-pos, name, info.Begin)
		}
		pos, prev = info.End, name
	}
	if pos != dataLen {
		return nil, fmt.Errorf("%w: tensors cover %d bytes but the data region holds %d: truncated or trailing bytes", ErrFormat, pos, dataLen)
	}
	return h, nil
}

// decodeEntry decodes one tensor entry with the exact (case-sensitive) key
// names of the format; encoding/json alone would also accept "DType".
func decodeEntry(msg json.RawMessage) (rawInfo, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(msg, &fields); err != nil {
		return rawInfo{}, err
	}
	var ri rawInfo
	if v, ok := fields["dtype"]; ok {
		if err := json.Unmarshal(v, &ri.DType); err != nil {
			return rawInfo{}, fmt.Errorf("dtype: %v", err)
		}
	}
	if v, ok := fields["shape"]; ok {
		if err := json.Unmarshal(v, &ri.Shape); err != nil {
			return rawInfo{}, fmt.Errorf("shape: %v", err)
		}
	}
	if v, ok := fields["data_offsets"]; ok {
		if err := json.Unmarshal(v, &ri.DataOffsets); err != nil {
			return rawInfo{}, fmt.Errorf("data_offsets: %v", err)
		}
	}
	return ri, nil
}

// checkInfo validates one entry: known dtype, non-negative shape, offsets in
// the data region, and shape × dtype size equal to the byte length.
func checkInfo(name string, ri rawInfo, dataLen int64) (TensorInfo, error) {
	size, ok := dtypeSize(ri.DType)
	if !ok {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: unknown dtype %q", ErrFormat, name, ri.DType)
	}
	if ri.Shape == nil {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: missing shape", ErrFormat, name)
	}
	if len(ri.DataOffsets) != 2 {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: data_offsets must be [begin, end], got %d numbers", ErrFormat, name, len(ri.DataOffsets))
	}
	begin, end := ri.DataOffsets[0], ri.DataOffsets[1]
	if begin < 0 || end < begin || end > dataLen {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: data_offsets [%d,%d] outside the data region of %d bytes", ErrFormat, name, begin, end, dataLen)
	}
	shape := make([]int, len(ri.Shape))
	elems := int64(1)
	for i, d := range ri.Shape {
		if d < 0 {
			return TensorInfo{}, fmt.Errorf("%w: tensor %q: negative dimension %d in shape %v", ErrFormat, name, d, ri.Shape)
		}
		if d != 0 && elems > math.MaxInt64/int64(size)/d {
			return TensorInfo{}, fmt.Errorf("%w: tensor %q: shape %v overflows", ErrFormat, name, ri.Shape)
		}
		elems *= d
		shape[i] = int(d)
	}
	if want := elems * int64(size); want != end-begin {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: shape %v of %s needs %d bytes but data_offsets [%d,%d] hold %d", ErrFormat, name, ri.Shape, ri.DType, want, begin, end, end-begin)
	}
	return TensorInfo{DType: ri.DType, Shape: shape, Begin: begin, End: end}, nil
}
