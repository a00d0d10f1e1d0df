package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Reading an Arrow IPC file zero-copy.
//
// An Arrow file is "ARROW1\0\0", the stream format (schema message,
// dictionary batches, record batches, end-of-stream), the footer, its length
// and "ARROW1". arrow-go's ipc.NewMappedFileReader would hand out slices of
// the mapping, but in v18.8.0 it leaves its dictionary memo uninitialised and
// panics on any file with a dictionary column (our captions). So we walk the
// embedded stream ourselves, making each message's metadata and body a
// memory.Buffer over the mapping, and let ipc.NewReaderFromMessageReader
// decode them: the record batch's columns then point into the mapping.
//
// Nothing reaches arrow-go unchecked: the footer's length must fit the file,
// every message (metadata and body) must lie between the leading magic and
// the footer, and each message's flatbuffer is walked by checkMessage
// (arrowfb.go) first, since arrow-go sizes allocations by the lengths it
// reads there.

var arrowMagic = []byte("ARROW1")

// maxMessageMeta bounds one message's flatbuffer metadata. A part's schema,
// with its metadata, takes a few KiB; its record batch's a few hundred
// bytes. arrow-go's own file reader has such a bound (maxMetadataSize).
const maxMessageMeta = 16 << 20

// mappedMessages is an ipc.MessageReader over the stream inside a mapped
// file: data is the stream, from the leading magic to the footer.
type mappedMessages struct {
	data []byte
	off  int
}

// newMappedMessages checks the magic at both ends and the footer's length
// (int32 before the trailing magic) against the file's size, and returns a
// reader of the messages before the footer.
func newMappedMessages(data []byte) (*mappedMessages, error) {
	if len(data) < 8+10 || !bytes.Equal(data[:6], arrowMagic) || !bytes.Equal(data[len(data)-6:], arrowMagic) {
		return nil, fmt.Errorf("not an Arrow IPC file (magic missing): %w", ErrCorrupt)
	}
	footer := int64(int32(binary.LittleEndian.Uint32(data[len(data)-10:])))
	if footer <= 0 || footer > int64(len(data)-8-10) {
		return nil, fmt.Errorf("arrow footer of %d bytes does not fit a file of %d: %w", footer, len(data), ErrCorrupt)
	}
	return &mappedMessages{data: data[:int64(len(data))-10-footer], off: 8}, nil
}

// Message returns the next message, io.EOF at the end-of-stream marker.
func (m *mappedMessages) Message() (*ipc.Message, error) {
	d := m.data
	if m.off+4 > len(d) {
		return nil, fmt.Errorf("arrow stream cut at byte %d: %w", m.off, ErrCorrupt)
	}
	n := binary.LittleEndian.Uint32(d[m.off:])
	m.off += 4
	if n == 0xFFFFFFFF { // continuation marker, then the length
		if m.off+4 > len(d) {
			return nil, fmt.Errorf("arrow stream cut at byte %d: %w", m.off, ErrCorrupt)
		}
		n = binary.LittleEndian.Uint32(d[m.off:])
		m.off += 4
	}
	if n == 0 {
		return nil, io.EOF
	}
	if int64(n) > int64(len(d)-m.off) || n < 8 || n > maxMessageMeta {
		return nil, fmt.Errorf("arrow message metadata of %d bytes at byte %d overruns the stream of %d bytes (or the %d-byte bound): %w", n, m.off, len(d), maxMessageMeta, ErrCorrupt)
	}
	if err := checkMessage(d[m.off : m.off+int(n)]); err != nil {
		return nil, fmt.Errorf("message at byte %d: %w", m.off, err)
	}
	meta := memory.NewBufferBytes(d[m.off : m.off+int(n)])
	m.off += int(n)
	probe, err := newMessage(meta, memory.NewBufferBytes(nil))
	if err != nil {
		return nil, err
	}
	bl := probe.BodyLen()
	probe.Release()
	if bl < 0 || bl > int64(len(d)-m.off) {
		return nil, fmt.Errorf("arrow message body of %d bytes at byte %d overruns the stream of %d bytes: %w", bl, m.off, len(d), ErrCorrupt)
	}
	body := memory.NewBufferBytes(d[m.off : m.off+int(bl)])
	m.off += int(bl)
	return newMessage(meta, body)
}

// asCorrupt marks an error from arrow-go's reader as ErrCorrupt, once: the
// errors of our own checks, which it passes on, already are.
func asCorrupt(err error) error {
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%v: %w", err, ErrCorrupt)
}

// newMessage wraps ipc.NewMessage, which panics on malformed flatbuffers.
func newMessage(meta, body *memory.Buffer) (msg *ipc.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed arrow message: %v: %w", r, ErrCorrupt)
		}
	}()
	msg = ipc.NewMessage(meta, body)
	_ = msg.Type()
	_ = msg.Version()
	return msg, nil
}

// Retain and Release: the mapping outlives the reader, nothing to count.
func (m *mappedMessages) Retain()  {}
func (m *mappedMessages) Release() {}
