package store

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzPart feeds arbitrary bytes to the zero-copy Arrow part reader: it must
// return an error or a part whose views agree with its row count, never panic.
func FuzzPart(f *testing.F) {
	m := testManifest(4, Float16, 2)
	for _, dtype := range []string{Float16, Float32} {
		// Encoded in memory: the setup runs in every fuzz worker, and an
		// fsync stalled by other I/O would read as a hung worker.
		c := &Cache{m: testManifest(4, dtype, 2)}
		c.m.SchemaVersion = SchemaVersion
		w := &PartWriter{c: c, name: "p", split: "train", shard: "s.tar", dict: map[string]int32{}}
		for i := 0; i < 3; i++ {
			for v := 0; v < 2; v++ {
				w.Add(string(rune('a'+i)), int32(i), v, "cap", []float32{1, 2, 3, float32(i)})
			}
		}
		var buf bytes.Buffer
		if err := w.encode(&buf); err != nil {
			f.Fatal(err)
		}
		b := buf.Bytes()
		f.Add(b, dtype == Float32)
		f.Add(b[:len(b)/2], dtype == Float32)
		f.Add(append(append([]byte{}, b[:64]...), b[len(b)-64:]...), dtype == Float32)
	}
	f.Add([]byte("ARROW1\x00\x00\xff\xff\xff\xff\x10\x00\x00\x00ARROW1"), false)
	f.Fuzz(func(t *testing.T, data []byte, f32 bool) {
		mm := m
		if f32 {
			mm.DType = Float32
		}
		// The footer check of a rerun (CheckPart) on the same bytes.
		if s, _, err := readFooter(bytes.NewReader(data)); err == nil {
			_, _, _ = partMetaOf(s)
		}
		p := &Part{Name: "fuzz", Dim: mm.Dim, DType: mm.DType, data: data}
		err := p.load(mm)
		defer p.close()
		if err != nil {
			return
		}
		// The lazy checks return errors, never panic; the accessors they
		// guard are used only when they pass.
		keysOK, capsOK := p.CheckKeys() == nil, p.CheckCaptions() == nil
		if len(p.Labels()) != p.N || len(p.Views()) != p.N || capsOK && len(p.CaptionIDs()) != p.N {
			t.Fatalf("column lengths disagree with %d rows", p.N)
		}
		for i := 0; i < p.N; i++ {
			if keysOK {
				_ = p.Key(i)
			}
			if capsOK {
				_ = p.Caption(i)
			}
			_ = p.Row(i, nil)
		}
	})
}

// FuzzMetadata parses the cache's JSON files (manifest, marker, rejects
// line) and index values from arbitrary bytes without panicking.
func FuzzMetadata(f *testing.F) {
	mb, _ := json.Marshal(testManifest(8, Float16, 1))
	f.Add(mb)
	f.Add([]byte(`{"name":"p","split":"train","rows":3,"size":10}`))
	f.Add([]byte(`{"name":"p","fingerprint":"sha256:x","dim":4,"dtype":"float32","views":1,"producer":{"backend":"cpu"},"damage":{"lost":3}}`))
	f.Add([]byte(`{"key":"k","reason":"decode: EOF"}`))
	f.Add([]byte{0x01, 0x02, 0x03})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Manifest
		if json.Unmarshal(data, &m) == nil {
			_ = m.Validate()
			_ = m.compatible(testManifest(8, Float16, 1))
		}
		var mk Marker
		if json.Unmarshal(data, &mk) == nil {
			_ = mk.RejectLines()
			_, _ = RebuildManifest([]Marker{mk, mk})
		}
		var rj Reject
		_ = json.Unmarshal(data, &rj)
		r := &Reader{parts: []*Part{{N: 5}, {N: 1}}}
		if loc, err := r.decodeLocation("k", data); err == nil && loc.Row+loc.Views > loc.Part.N {
			t.Fatalf("location %+v outside its part", loc)
		}
	})
}
