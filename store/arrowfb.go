package store

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Checking an Arrow IPC message's flatbuffer before arrow-go parses it.
//
// arrow-go's generated flatbuffer accessors trust every length they read: a
// schema whose fields vector claims 2^32 entries makes schemaFromFB allocate
// that many arrow.Field (an 88 GB make, fatal, not a recoverable panic), and
// a vector of shared offsets makes it copy one string or one subtree once per
// reference. Out-of-range reads merely panic, which load recovers; sizes
// cannot be recovered from. So each message is walked here first, with
// bounds checks: every table, vector and string arrow-go will reach must lie
// inside the message, nesting is at most maxFBDepth deep, and the bytes of
// the objects reached, counted each time they are reached, may not exceed
// the message's size (a flatbuffer whose objects are not shared, as
// arrow-go's writer makes them, meets that exactly; sharing is what turns a
// small message into unbounded work). Features arrow-go would turn into
// allocations sized by the body (compressed buffers, delta dictionaries) or
// writes into the read-only mapping (big-endian data) are refused: parts
// never use them.

// maxFBDepth bounds the nesting of tables (a field's children's children...):
// arrow-go recurses once per level. Our schema nests 3 deep.
const maxFBDepth = 64

// Arrow's union tags (format/Message.fbs, format/Schema.fbs).
const (
	fbHeaderSchema          = 1
	fbHeaderDictionaryBatch = 2
	fbHeaderRecordBatch     = 3

	fbTypeTimestamp = 10
	fbTypeUnion     = 14
)

// fbCheck walks one flatbuffer; budget is the bytes left to reach.
type fbCheck struct {
	buf    []byte
	budget int64
}

// fbTable is a table's position and its vtable.
type fbTable struct {
	pos, vt       int64
	vtSize, inner int64 // vtable bytes; the table's inline bytes
}

func (c *fbCheck) errorf(format string, args ...any) error {
	return fmt.Errorf("arrow message metadata: "+format+": %w", append(args, ErrCorrupt)...)
}

// spend charges n bytes of reached objects against the budget.
func (c *fbCheck) spend(n int64) error {
	c.budget -= n
	if c.budget < 0 {
		return c.errorf("its objects, counted each time they are reached, exceed its %d bytes (shared objects)", len(c.buf))
	}
	return nil
}

func (c *fbCheck) u16(at int64) int64 { return int64(binary.LittleEndian.Uint16(c.buf[at:])) }
func (c *fbCheck) u32(at int64) int64 { return int64(binary.LittleEndian.Uint32(c.buf[at:])) }

// in reports whether [at, at+n) lies in the buffer.
func (c *fbCheck) in(at, n int64) bool { return at >= 0 && n >= 0 && at <= int64(len(c.buf))-n }

// table checks the table at pos and its vtable.
func (c *fbCheck) table(pos int64) (fbTable, error) {
	if !c.in(pos, 4) {
		return fbTable{}, c.errorf("table at %d outside its %d bytes", pos, len(c.buf))
	}
	vt := pos - int64(int32(binary.LittleEndian.Uint32(c.buf[pos:])))
	if !c.in(vt, 4) {
		return fbTable{}, c.errorf("vtable at %d outside its %d bytes", vt, len(c.buf))
	}
	t := fbTable{pos: pos, vt: vt, vtSize: c.u16(vt), inner: c.u16(vt + 2)}
	if t.vtSize < 4 || t.vtSize%2 != 0 || !c.in(vt, t.vtSize) || t.inner < 4 || !c.in(pos, t.inner) {
		return fbTable{}, c.errorf("table at %d: vtable of %d bytes or %d inline bytes out of bounds", pos, t.vtSize, t.inner)
	}
	for s := int64(4); s < t.vtSize; s += 2 {
		if off := c.u16(vt + s); off != 0 && off >= t.inner {
			return fbTable{}, c.errorf("table at %d: field at %d past its %d inline bytes", pos, off, t.inner)
		}
	}
	return t, c.spend(t.inner)
}

// field returns the position of slot's value, 0 when absent; the value
// must have size bytes inside the table.
func (c *fbCheck) field(t fbTable, slot int, size int64) (int64, error) {
	s := 4 + 2*int64(slot)
	if s+2 > t.vtSize {
		return 0, nil
	}
	off := c.u16(t.vt + s)
	if off == 0 {
		return 0, nil
	}
	if off+size > t.inner {
		return 0, c.errorf("table at %d: slot %d of %d bytes past its %d inline bytes", t.pos, slot, size, t.inner)
	}
	return t.pos + off, nil
}

// u8 reads slot's byte (0 when absent).
func (c *fbCheck) u8(t fbTable, slot int) (byte, error) {
	at, err := c.field(t, slot, 1)
	if err != nil || at == 0 {
		return 0, err
	}
	return c.buf[at], nil
}

// ref follows slot's offset; 0 when absent.
func (c *fbCheck) ref(t fbTable, slot int) (int64, error) {
	at, err := c.field(t, slot, 4)
	if err != nil || at == 0 {
		return 0, err
	}
	to := at + c.u32(at)
	if !c.in(to, 4) {
		return 0, c.errorf("table at %d: slot %d points to %d, outside its %d bytes", t.pos, slot, to, len(c.buf))
	}
	return to, nil
}

// vector checks the vector (or string, elem 1) at slot and returns its
// first element's position and its length; 0, 0 when absent.
func (c *fbCheck) vector(t fbTable, slot int, elem int64) (int64, int64, error) {
	at, err := c.ref(t, slot)
	if err != nil || at == 0 {
		return 0, 0, err
	}
	n := c.u32(at)
	if !c.in(at+4, n*elem) {
		return 0, 0, c.errorf("table at %d: slot %d's vector of %d × %d bytes overruns its %d bytes", t.pos, slot, n, elem, len(c.buf))
	}
	return at + 4, n, c.spend(4 + n*elem)
}

// subtable checks the table slot points to, if any, with check.
func (c *fbCheck) subtable(t fbTable, slot, depth int, check func(fbTable, int) error) error {
	at, err := c.ref(t, slot)
	if err != nil || at == 0 {
		return err
	}
	return c.tableAt(at, depth+1, check)
}

func (c *fbCheck) tableAt(at int64, depth int, check func(fbTable, int) error) error {
	if depth > maxFBDepth {
		return c.errorf("tables nested deeper than %d", maxFBDepth)
	}
	t, err := c.table(at)
	if err != nil {
		return err
	}
	if check == nil {
		return nil
	}
	return check(t, depth)
}

// tables checks each table of the vector at slot with check.
func (c *fbCheck) tables(t fbTable, slot, depth int, check func(fbTable, int) error) error {
	first, n, err := c.vector(t, slot, 4)
	if err != nil {
		return err
	}
	for i := int64(0); i < n; i++ {
		e := first + 4*i
		to := e + c.u32(e)
		if !c.in(to, 4) {
			return c.errorf("vector element at %d points to %d, outside its %d bytes", e, to, len(c.buf))
		}
		if err := c.tableAt(to, depth+1, check); err != nil {
			return err
		}
	}
	return nil
}

// strings checks the strings (or byte vectors) at the given slots.
func (c *fbCheck) strings(t fbTable, slots ...int) error {
	for _, s := range slots {
		if _, _, err := c.vector(t, s, 1); err != nil {
			return err
		}
	}
	return nil
}

// keyValues checks a custom_metadata vector: KeyValue {key, value: string}.
func (c *fbCheck) keyValues(t fbTable, slot, depth int) error {
	return c.tables(t, slot, depth, func(kv fbTable, _ int) error { return c.strings(kv, 0, 1) })
}

// checkMessage checks a Message {version, header (union), bodyLength,
// custom_metadata} whose header is a Schema, a DictionaryBatch or a
// RecordBatch: the only messages an Arrow file of ours holds.
func checkMessage(meta []byte) error {
	c := &fbCheck{buf: meta, budget: int64(len(meta))}
	if !c.in(0, 4) {
		return c.errorf("%d bytes", len(meta))
	}
	return c.tableAt(c.u32(0), 0, func(m fbTable, depth int) error {
		kind, err := c.u8(m, 1)
		if err != nil {
			return err
		}
		var header func(fbTable, int) error
		switch kind {
		case fbHeaderSchema:
			header = c.schema
		case fbHeaderDictionaryBatch:
			header = c.dictionaryBatch
		case fbHeaderRecordBatch:
			header = c.recordBatch
		default:
			return c.errorf("message header of type %d, want a schema, dictionary or record batch", kind)
		}
		if at, err := c.ref(m, 2); err != nil || at == 0 {
			if err == nil {
				err = c.errorf("message without its header")
			}
			return err
		}
		if err := c.subtable(m, 2, depth, header); err != nil {
			return err
		}
		return c.keyValues(m, 4, depth)
	})
}

// schema: Schema {endianness, fields: [Field], custom_metadata, features: [long]}.
func (c *fbCheck) schema(s fbTable, depth int) error {
	at, err := c.field(s, 0, 2)
	if err != nil {
		return err
	}
	if at != 0 && c.u16(at) != 0 {
		return c.errorf("big-endian schema (parts are little-endian; arrow-go would swap the mapped bytes in place)")
	}
	if err := c.tables(s, 1, depth, c.fieldTable); err != nil {
		return err
	}
	if err := c.keyValues(s, 2, depth); err != nil {
		return err
	}
	_, _, err = c.vector(s, 3, 8)
	return err
}

// fieldTable: Field {name, nullable, type_type, type (union), dictionary:
// DictionaryEncoding, children: [Field], custom_metadata}.
func (c *fbCheck) fieldTable(f fbTable, depth int) error {
	if err := c.strings(f, 0); err != nil {
		return err
	}
	kind, err := c.u8(f, 2)
	if err != nil {
		return err
	}
	if err := c.subtable(f, 3, depth, func(t fbTable, _ int) error {
		switch kind {
		case fbTypeTimestamp: // Timestamp {unit, timezone: string}
			return c.strings(t, 1)
		case fbTypeUnion: // Union {mode, typeIds: [int]}
			_, _, err := c.vector(t, 1, 4)
			return err
		}
		return nil // every other type holds scalars only
	}); err != nil {
		return err
	}
	// DictionaryEncoding {id, indexType: Int, isOrdered, dictionaryKind}; Int holds scalars.
	if err := c.subtable(f, 4, depth, func(d fbTable, depth int) error {
		return c.subtable(d, 1, depth, nil)
	}); err != nil {
		return err
	}
	if err := c.tables(f, 5, depth, c.fieldTable); err != nil {
		return err
	}
	return c.keyValues(f, 6, depth)
}

// recordBatch: RecordBatch {length, nodes: [FieldNode], buffers: [Buffer],
// compression, variadicBufferCounts: [long]}; FieldNode and Buffer are
// structs of two longs.
func (c *fbCheck) recordBatch(r fbTable, _ int) error {
	for _, slot := range []int{1, 2} {
		if _, _, err := c.vector(r, slot, 16); err != nil {
			return err
		}
	}
	if at, err := c.ref(r, 3); err != nil || at != 0 {
		if err == nil {
			// arrow-go would allocate each buffer's claimed uncompressed size.
			err = c.errorf("compressed record batch (parts are written uncompressed)")
		}
		return err
	}
	_, _, err := c.vector(r, 4, 8)
	return err
}

// dictionaryBatch: DictionaryBatch {id, data: RecordBatch, isDelta}.
func (c *fbCheck) dictionaryBatch(d fbTable, depth int) error {
	delta, err := c.u8(d, 2)
	if err != nil {
		return err
	}
	if delta != 0 {
		// arrow-go concatenates a delta onto the dictionary, allocating what its offsets claim.
		return c.errorf("delta dictionary batch (parts write each dictionary once)")
	}
	return c.subtable(d, 1, depth, c.recordBatch)
}

// fbBlockSize is a footer Block {offset: long, metaDataLength: int (+4
// padding), bodyLength: long}.
const fbBlockSize = 24

// checkFooterFB checks a file footer, Footer {version, schema,
// dictionaries: [Block], recordBatches: [Block], custom_metadata}, and the
// metadata of each dictionary message it points to in f (size bytes):
// arrow-go's file reader decodes those as it opens the file.
func checkFooterFB(footer []byte, f io.ReaderAt, size int64) error {
	c := &fbCheck{buf: footer, budget: int64(len(footer))}
	if !c.in(0, 4) {
		return c.errorf("footer of %d bytes", len(footer))
	}
	var dicts, n int64
	err := c.tableAt(c.u32(0), 0, func(t fbTable, depth int) error {
		if err := c.subtable(t, 1, depth, c.schema); err != nil {
			return err
		}
		var err error
		if dicts, n, err = c.vector(t, 2, fbBlockSize); err != nil {
			return err
		}
		if _, _, err := c.vector(t, 3, fbBlockSize); err != nil {
			return err
		}
		return c.keyValues(t, 4, depth)
	})
	if err != nil {
		return fmt.Errorf("footer: %w", err)
	}
	for i := int64(0); i < n; i++ {
		b := dicts + i*fbBlockSize
		off := int64(binary.LittleEndian.Uint64(footer[b:]))
		meta := int64(int32(binary.LittleEndian.Uint32(footer[b+8:])))
		if err := checkBlockMessage(f, size, off, meta); err != nil {
			return fmt.Errorf("footer: dictionary block %d: %w", i, err)
		}
	}
	return nil
}

// checkBlockMessage reads the message metadata of a footer block (its
// length prefix, then the flatbuffer) and checks it.
func checkBlockMessage(f io.ReaderAt, size, off, meta int64) error {
	if off < 0 || meta < 8 || meta > maxMessageMeta || off > size-meta {
		return fmt.Errorf("message of %d metadata bytes at byte %d does not fit a file of %d: %w", meta, off, size, ErrCorrupt)
	}
	buf := make([]byte, meta)
	if _, err := f.ReadAt(buf, off); err != nil {
		return fmt.Errorf("message at byte %d: %w", off, err)
	}
	start := int64(4)
	if binary.LittleEndian.Uint32(buf) == 0xFFFFFFFF { // continuation marker, then the length
		start = 8
	}
	n := int64(binary.LittleEndian.Uint32(buf[start-4:]))
	if n > meta-start {
		return fmt.Errorf("message at byte %d: %d metadata bytes, its block holds %d: %w", off, n, meta-start, ErrCorrupt)
	}
	return checkMessage(buf[start : start+n])
}
