package safetensors

import (
	"encoding/binary"
	"testing"
)

// FuzzOpen feeds arbitrary header bytes and data regions to the parser: it
// must return an error or a File whose every tensor can be read in range,
// and a parsed file must survive a write/read round trip unchanged.
func FuzzOpen(f *testing.F) {
	valid, err := Marshal([]Tensor{
		F32("w", []int{2, 2}, []float32{1, 2, 3, 4}),
		I64("ids", []int{2}, []int64{1, -1}),
		BF16("b", []int{1}, []float32{0.5}),
	}, map[string]string{"format": "pt"})
	if err != nil {
		f.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(valid)
	f.Add(valid[8:8+n], valid[8+n:])
	f.Add([]byte(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`), []byte{0, 0x3c, 0xff, 0x7f})
	f.Add([]byte(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`), []byte{1, 2})
	f.Add([]byte(`{"__metadata__":{"k":"v"}}`), []byte{})
	f.Add([]byte(`{"a":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}  `), []byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, header, data []byte) {
		b := make([]byte, 8, 8+len(header)+len(data))
		binary.LittleEndian.PutUint64(b, uint64(len(header)))
		b = append(append(b, header...), data...)
		file, err := FromBytes(b)
		if err != nil {
			return
		}
		var ts []Tensor
		for _, name := range file.Names() {
			raw, info, err := file.Bytes(name)
			if err != nil {
				t.Fatal(err)
			}
			switch info.DType {
			case "F64", "F32", "F16", "BF16":
				if _, _, err := file.Float32(name); err != nil {
					t.Fatal(err)
				}
				if _, _, err := file.Float64(name); err != nil {
					t.Fatal(err)
				}
			case "F8_E5M2", "F8_E4M3":
			default:
				file.Int32s(name) // may fail on range, must not panic
				file.Int64s(name)
			}
			ts = append(ts, Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: raw})
		}
		again, err := Marshal(ts, file.Metadata())
		if err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		g, err := FromBytes(again)
		if err != nil {
			t.Fatalf("reread: %v", err)
		}
		for _, name := range file.Names() {
			x, _, _ := file.Bytes(name)
			y, _, _ := g.Bytes(name)
			if string(x) != string(y) {
				t.Fatalf("%q changed in a round trip", name)
			}
		}
	})
}
