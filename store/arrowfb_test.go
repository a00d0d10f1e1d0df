package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// encodedPart is a small part's Arrow file, encoded in memory.
func encodedPart(t *testing.T) []byte {
	t.Helper()
	c := &Cache{m: testManifest(4, Float16, 2)}
	c.m.SchemaVersion = SchemaVersion
	w := &PartWriter{c: c, name: "p", split: "train", shard: "s.tar", dict: map[string]int32{}}
	for i := 0; i < 3; i++ {
		if err := w.Add(string(rune('a'+i)), int32(i), 0, "cap", []float32{1, 2, 3, float32(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := w.encode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func loadBytes(data []byte) error {
	p := &Part{Name: "t", Dim: 4, DType: Float16, data: data}
	defer p.close()
	return p.load(testManifest(4, Float16, 2))
}

// fbVector follows, from the root table of the flatbuffer at buf[at:],
// the table offsets in slots[:len-1] and returns the byte offset (in buf)
// of the length of the vector in the last slot.
func fbVector(t *testing.T, buf []byte, at int, slots ...int) int {
	t.Helper()
	c := &fbCheck{buf: buf[at:], budget: 1 << 30}
	tb, err := c.table(c.u32(0))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range slots {
		to, err := c.ref(tb, s)
		if err != nil || to == 0 {
			t.Fatalf("slot %d (step %d): %d %v", s, i, to, err)
		}
		if i == len(slots)-1 {
			return at + int(to)
		}
		if tb, err = c.table(to); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("no slots")
	return 0
}

// schemaFieldsVector finds, in an encoded part, the byte offset of the
// length of the schema's fields vector (the first message's header, slot 1).
func schemaFieldsVector(t *testing.T, data []byte) int {
	t.Helper()
	if binary.LittleEndian.Uint32(data[8:]) != 0xFFFFFFFF {
		t.Fatal("no continuation marker before the schema message")
	}
	v := fbVector(t, data, 16, 2, 1) // Message.header → Schema.fields
	if n := binary.LittleEndian.Uint32(data[v:]); n != 5 {
		t.Fatalf("fields vector at %d holds %d fields, want the part schema's 5", v, n)
	}
	return v
}

// footerFieldsVector is schemaFieldsVector for the footer's copy of the schema.
func footerFieldsVector(t *testing.T, data []byte) int {
	t.Helper()
	footer := len(data) - 10 - int(binary.LittleEndian.Uint32(data[len(data)-10:]))
	v := fbVector(t, data, footer, 1, 1) // Footer.schema → Schema.fields
	if n := binary.LittleEndian.Uint32(data[v:]); n != 5 {
		t.Fatalf("footer's fields vector at %d holds %d fields, want 5", v, n)
	}
	return v
}

// dictionaryNodesVector finds the nodes vector of the dictionary batch (the
// stream's second message, after the schema message and its empty body).
func dictionaryNodesVector(t *testing.T, data []byte) int {
	t.Helper()
	second := 16 + int(binary.LittleEndian.Uint32(data[12:]))
	if binary.LittleEndian.Uint32(data[second:]) != 0xFFFFFFFF {
		t.Fatalf("no continuation marker at byte %d", second)
	}
	c := &fbCheck{buf: data[second+8:], budget: 1 << 30}
	m, err := c.table(c.u32(0))
	if err != nil {
		t.Fatal(err)
	}
	if kind, _ := c.u8(m, 1); kind != fbHeaderDictionaryBatch {
		t.Fatalf("second message of type %d, want a dictionary batch", kind)
	}
	return fbVector(t, data, second+8, 2, 1, 1) // Message.header → DictionaryBatch.data → RecordBatch.nodes
}

// TestLoadRefusesHugeVector: a schema whose fields vector claims a billion
// fields (FuzzPart's crasher: arrow-go allocated 88 GB for it and the
// process died) is an ErrCorrupt naming the overrun, and the untouched part
// still loads.
func TestLoadRefusesHugeVector(t *testing.T) {
	data := encodedPart(t)
	if err := loadBytes(data); err != nil {
		t.Fatalf("the intact part: %v", err)
	}
	bad := bytes.Clone(data)
	binary.LittleEndian.PutUint32(bad[schemaFieldsVector(t, bad):], 0x3C000000)
	err := loadBytes(bad)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "overruns") {
		t.Fatalf("a fields vector of 0x3C000000: %v, want an ErrCorrupt naming the overrun", err)
	}
	if strings.Count(err.Error(), ErrCorrupt.Error()) != 1 {
		t.Errorf("ErrCorrupt said more than once: %v", err)
	}
}

// TestReadFooterRefusesHugeVectors: the footer path (CheckPart's
// readFooter, through arrow-go's file reader) refuses the same damage in the
// footer's schema and in the dictionary message the footer points to; the
// part's load refuses the dictionary's too.
func TestReadFooterRefusesHugeVectors(t *testing.T) {
	data := encodedPart(t)
	if _, _, err := readFooter(bytes.NewReader(data)); err != nil {
		t.Fatalf("the intact part: %v", err)
	}
	for name, at := range map[string]int{
		"footer schema's fields":   footerFieldsVector(t, data),
		"dictionary batch's nodes": dictionaryNodesVector(t, data),
	} {
		bad := bytes.Clone(data)
		binary.LittleEndian.PutUint32(bad[at:], 0x3C000000)
		_, _, err := readFooter(bytes.NewReader(bad))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "overruns") {
			t.Errorf("%s vector of 0x3C000000, footer path: %v, want an ErrCorrupt naming the overrun", name, err)
		}
		if name == "dictionary batch's nodes" {
			if err := loadBytes(bad); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "overruns") {
				t.Errorf("%s vector of 0x3C000000, load: %v, want an ErrCorrupt naming the overrun", name, err)
			}
		}
	}
}

// TestLoadRefusesBadFooter: a footer length that does not fit the file is
// refused before any message is read.
func TestLoadRefusesBadFooter(t *testing.T) {
	for _, n := range []int32{0, -1, 1 << 30} {
		bad := bytes.Clone(encodedPart(t))
		binary.LittleEndian.PutUint32(bad[len(bad)-10:], uint32(n))
		if err := loadBytes(bad); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "footer") {
			t.Errorf("footer length %d: %v, want an ErrCorrupt naming the footer", n, err)
		}
	}
}

// fbBuilder lays out a flatbuffer front to back: each table's vtable just
// before it, its children after it (offsets point forward).
type fbBuilder struct{ b []byte }

// table appends a table of inner inline bytes whose slots sit at the given
// offsets (0: absent) and returns its position.
func (f *fbBuilder) table(inner int, slots ...int) int {
	vt := len(f.b)
	f.b = binary.LittleEndian.AppendUint16(f.b, uint16(4+2*len(slots)))
	f.b = binary.LittleEndian.AppendUint16(f.b, uint16(inner))
	for _, s := range slots {
		f.b = binary.LittleEndian.AppendUint16(f.b, uint16(s))
	}
	pos := len(f.b)
	f.b = binary.LittleEndian.AppendUint32(f.b, uint32(pos-vt))
	f.b = append(f.b, make([]byte, inner-4)...)
	return pos
}

// point writes at `at` the offset to `to`.
func (f *fbBuilder) point(at, to int) { binary.LittleEndian.PutUint32(f.b[at:], uint32(to-at)) }

// vector appends a vector of n 4-byte slots and returns its position.
func (f *fbBuilder) vector(n int) int {
	pos := len(f.b)
	f.b = binary.LittleEndian.AppendUint32(f.b, uint32(n))
	f.b = append(f.b, make([]byte, 4*n)...)
	return pos
}

// message appends Message {header_type = kind, header → a new table} and
// returns the header's slot to point at the header table.
func (f *fbBuilder) message(kind byte) int {
	f.b = make([]byte, 4)
	m := f.table(12, 0, 4, 8) // version absent, header_type at 4, header at 8
	f.point(0, m)
	f.b[m+4] = kind
	return m + 8
}

// sharedSchema is a schema of n fields that all point to one field table
// named by a string of l bytes.
func sharedSchema(n, l int) []byte {
	var f fbBuilder
	hdr := f.message(fbHeaderSchema)
	s := f.table(8, 0, 4) // endianness absent, fields at 4
	f.point(hdr, s)
	v := f.vector(n)
	f.point(s+4, v)
	fld := f.table(8, 4) // name at 4
	for i := 0; i < n; i++ {
		f.point(v+4+4*i, fld)
	}
	name := f.vector(0)
	binary.LittleEndian.PutUint32(f.b[name:], uint32(l))
	f.b = append(f.b, bytes.Repeat([]byte("x"), l)...)
	f.point(fld+4, name)
	return f.b
}

// TestCheckMessageSharedObjects: a small message whose vector points n
// times to one field costs arrow-go n copies of that field; one reference
// passes, a thousand are refused (the bytes reached outgrow the message).
func TestCheckMessageSharedObjects(t *testing.T) {
	if err := checkMessage(sharedSchema(1, 1000)); err != nil {
		t.Fatalf("one field: %v", err)
	}
	err := checkMessage(sharedSchema(1000, 1000))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "shared") {
		t.Fatalf("a thousand references to one field: %v, want an ErrCorrupt naming the sharing", err)
	}
}

// TestCheckMessageRefusals: what parts never hold and arrow-go would turn
// into allocations sized by claims (compression, delta dictionaries), writes
// into the mapping (big-endian) or other messages, is refused; the same
// messages without it pass.
func TestCheckMessageRefusals(t *testing.T) {
	batch := func(compressed bool) []byte {
		var f fbBuilder
		hdr := f.message(fbHeaderRecordBatch)
		if !compressed {
			f.point(hdr, f.table(4)) // every slot absent
			return f.b
		}
		r := f.table(8, 0, 0, 0, 4) // length, nodes, buffers absent; compression at 4
		f.point(hdr, r)
		f.point(r+4, f.table(8, 4, 5)) // BodyCompression {codec, method}
		return f.b
	}
	delta := func(isDelta bool) []byte {
		var f fbBuilder
		hdr := f.message(fbHeaderDictionaryBatch)
		d := f.table(8, 0, 0, 4) // id, data absent; isDelta at 4
		f.point(hdr, d)
		if isDelta {
			f.b[d+4] = 1
		}
		return f.b
	}
	bigEndian := func(big bool) []byte {
		var f fbBuilder
		hdr := f.message(fbHeaderSchema)
		s := f.table(8, 4) // endianness at 4
		f.point(hdr, s)
		if big {
			f.b[s+4] = 1
		}
		return f.b
	}
	tensor := func(kind byte) []byte {
		var f fbBuilder
		f.point(f.message(kind), f.table(4))
		return f.b
	}
	for _, tc := range []struct {
		name      string
		ok, bad   []byte
		wantInErr string
	}{
		{"compressed record batch", batch(false), batch(true), "compressed"},
		{"delta dictionary", delta(false), delta(true), "delta"},
		{"big-endian schema", bigEndian(false), bigEndian(true), "big-endian"},
		{"tensor message", tensor(fbHeaderSchema), tensor(4), "header of type 4"},
	} {
		if err := checkMessage(tc.ok); err != nil {
			t.Errorf("%s: the message without it: %v", tc.name, err)
		}
		if err := checkMessage(tc.bad); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.wantInErr) {
			t.Errorf("%s: %v, want an ErrCorrupt saying %q", tc.name, err, tc.wantInErr)
		}
	}
}

// TestCheckMessageDepth: fields nested deeper than maxFBDepth are refused
// (arrow-go recurses once per level).
func TestCheckMessageDepth(t *testing.T) {
	nested := func(levels int) []byte {
		var f fbBuilder
		hdr := f.message(fbHeaderSchema)
		s := f.table(8, 0, 4)
		f.point(hdr, s)
		parent := s + 4
		for i := 0; i < levels; i++ {
			v := f.vector(1)
			f.point(parent, v)
			fld := f.table(8, 0, 0, 0, 0, 0, 4) // children (slot 5) at 4
			f.point(v+4, fld)
			parent = fld + 4
		}
		return f.b // the last field's children slot is present and points to itself: an empty vector
	}
	if err := checkMessage(nested(10)); err != nil {
		t.Fatalf("10 levels: %v", err)
	}
	if err := checkMessage(nested(100)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "deeper") {
		t.Fatalf("100 levels: %v, want an ErrCorrupt naming the depth", err)
	}
}
