package store

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Guarding arrow-go against lying flatbuffers.
//
// arrow-go v18.8.0 sizes slices by the lengths a schema's flatbuffer
// states (make([]arrow.Field, schema.FieldsLength()), one per child, one
// per metadata pair) before reading any element. A damaged part whose
// schema says it has 2^31 fields therefore kills the process with "out of
// memory", which no recover catches — found by FuzzPart. Before a schema
// reaches arrow-go, checkSchemaFB walks it and checks that every vector
// that arrow-go allocates from fits in the buffer, so the allocation is at
// most a small multiple of the bytes at hand.

// fbuf reads a flatbuffer with bounds checks.
type fbuf []byte

var errFB = errors.New("flatbuffer out of bounds")

func (b fbuf) u32(p int) (int, error) {
	if p < 0 || p+4 > len(b) {
		return 0, errFB
	}
	return int(binary.LittleEndian.Uint32(b[p:])), nil
}

func (b fbuf) u16(p int) (int, error) {
	if p < 0 || p+2 > len(b) {
		return 0, errFB
	}
	return int(binary.LittleEndian.Uint16(b[p:])), nil
}

// field is the position of table t's field slot, or 0 when it is absent.
func (b fbuf) field(t, slot int) (int, error) {
	so, err := b.u32(t)
	if err != nil {
		return 0, err
	}
	vt := t - int(int32(uint32(so)))
	size, err := b.u16(vt)
	if err != nil {
		return 0, err
	}
	at := 4 + 2*slot
	if at+2 > size {
		return 0, nil
	}
	off, err := b.u16(vt + at)
	if err != nil || off == 0 {
		return 0, err
	}
	return t + off, nil
}

// ref follows the offset stored at p (to a table, vector or string).
func (b fbuf) ref(p int) (int, error) {
	u, err := b.u32(p)
	if err != nil {
		return 0, err
	}
	if p+u >= len(b) {
		return 0, errFB
	}
	return p + u, nil
}

// vector returns the start and length of table t's vector field slot of
// elem-byte elements, checking that it fits; n is 0 when it is absent.
func (b fbuf) vector(t, slot, elem int) (start, n int, err error) {
	p, err := b.field(t, slot)
	if err != nil || p == 0 {
		return 0, 0, err
	}
	v, err := b.ref(p)
	if err != nil {
		return 0, 0, err
	}
	if n, err = b.u32(v); err != nil {
		return 0, 0, err
	}
	if int64(v)+4+int64(n)*int64(elem) > int64(len(b)) {
		return 0, 0, fmt.Errorf("vector of %d elements at byte %d: %w", n, v, errFB)
	}
	return v + 4, n, nil
}

// The flatbuffer slots arrow-go reads (Arrow's Schema.fbs, Message.fbs, File.fbs).
const (
	fbMessageHeaderType = 1 // Message.header_type (ubyte)
	fbMessageHeader     = 2 // Message.header (union table)
	fbHeaderSchema      = 1 // MessageHeader.Schema
	fbFooterSchema      = 1 // Footer.schema
	fbSchemaFields      = 1
	fbSchemaMetadata    = 2
	fbSchemaFeatures    = 3
	fbFieldName         = 0
	fbFieldTypeType     = 2
	fbFieldType         = 3
	fbFieldChildren     = 5
	fbFieldMetadata     = 6
	fbTypeUnion         = 14 // Type.Union, whose table holds typeIds
	fbUnionTypeIDs      = 1
	fbMaxDepth          = 64
)

// checkMessageFB checks an IPC message's flatbuffer when it holds a schema.
func checkMessageFB(meta []byte) (err error) {
	b := fbuf(meta)
	defer wrapFB(&err)
	root, err := b.ref(0)
	if err != nil {
		return err
	}
	tp, err := b.field(root, fbMessageHeaderType)
	if err != nil || tp == 0 || tp >= len(b) || b[tp] != fbHeaderSchema {
		return err
	}
	h, err := b.field(root, fbMessageHeader)
	if err != nil || h == 0 {
		return err
	}
	s, err := b.ref(h)
	if err != nil {
		return err
	}
	return b.schema(s)
}

// checkFooterFB checks a file footer's schema.
func checkFooterFB(footer []byte) (err error) {
	b := fbuf(footer)
	defer wrapFB(&err)
	root, err := b.ref(0)
	if err != nil {
		return err
	}
	p, err := b.field(root, fbFooterSchema)
	if err != nil || p == 0 {
		return err
	}
	s, err := b.ref(p)
	if err != nil {
		return err
	}
	return b.schema(s)
}

func wrapFB(err *error) {
	if *err != nil {
		*err = fmt.Errorf("malformed arrow schema: %v: %w", *err, ErrCorrupt)
	}
}

func (b fbuf) schema(s int) error {
	if _, _, err := b.vector(s, fbSchemaFeatures, 8); err != nil {
		return err
	}
	if err := b.metadata(s, fbSchemaMetadata); err != nil {
		return err
	}
	return b.fields(s, fbSchemaFields, 0)
}

func (b fbuf) fields(t, slot, depth int) error {
	if depth > fbMaxDepth {
		return fmt.Errorf("fields nested deeper than %d: %w", fbMaxDepth, errFB)
	}
	start, n, err := b.vector(t, slot, 4)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		f, err := b.ref(start + 4*i)
		if err != nil {
			return err
		}
		if err := b.str(f, fbFieldName); err != nil {
			return err
		}
		if err := b.metadata(f, fbFieldMetadata); err != nil {
			return err
		}
		if err := b.union(f); err != nil {
			return err
		}
		if err := b.fields(f, fbFieldChildren, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// union checks a Union type's typeIds.
func (b fbuf) union(f int) error {
	tp, err := b.field(f, fbFieldTypeType)
	if err != nil || tp == 0 || tp >= len(b) || b[tp] != fbTypeUnion {
		return err
	}
	p, err := b.field(f, fbFieldType)
	if err != nil || p == 0 {
		return err
	}
	u, err := b.ref(p)
	if err != nil {
		return err
	}
	_, _, err = b.vector(u, fbUnionTypeIDs, 4)
	return err
}

func (b fbuf) metadata(t, slot int) error {
	start, n, err := b.vector(t, slot, 4)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		kv, err := b.ref(start + 4*i)
		if err != nil {
			return err
		}
		if err := b.str(kv, 0); err != nil {
			return err
		}
		if err := b.str(kv, 1); err != nil {
			return err
		}
	}
	return nil
}

func (b fbuf) str(t, slot int) error {
	_, _, err := b.vector(t, slot, 1)
	return err
}
