package wds

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ErrSkipped is wrapped by the errors after which Next may be called again:
// a member or sample that was left out (a *MemberError). Any other error
// from Next ends the shard.
var ErrSkipped = errors.New("left out, reading goes on")

// MemberError reports a member left out of every sample: its name is unsafe
// or gives no key and extension, it is not a regular file, it is larger than
// the reader accepts, or its sample holds its extension twice (then that
// whole sample is left out, since which copy is right cannot be told). The
// reader has skipped it: the next Next continues after it.
type MemberError struct {
	Shard  string // the shard's name as given to the reader
	Name   string // the member's name as stored in the archive
	Key    string // the sample it belongs to, when its name gives a safe key
	Offset int64  // tar-stream offset of its header
	Reason string // what is wrong with it, e.g. `".." in path`
}

func (e *MemberError) Error() string {
	return fmt.Sprintf("wds: %s: member %q at byte %d: %s", e.Shard, e.Name, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrSkipped) true.
func (e *MemberError) Unwrap() error { return ErrSkipped }

// DamageError reports an archive that cannot be read past a point: cut
// short, a corrupt header, a broken compressed stream. Every complete sample
// before the damage has been returned; nothing after it can be read.
type DamageError struct {
	Shard string
	// Offset is where the last intact member's (padded) data ends, in the
	// uncompressed tar stream (or where the stream stops, when that is
	// inside the padding): nothing from there on could be read.
	Offset int64
	// Samples is the number of samples returned before the damage, After
	// the key of the last of them ("" when none).
	Samples int
	After   string
	// Key is the sample the damage cut short, when it is known: its members
	// read so far were dropped. "" when the damage fell between samples or
	// hit a header, whose key cannot be read.
	Key string
	// Err is what the tar or decompression layer reported.
	Err error
}

func (e *DamageError) Error() string {
	where := "before its first sample"
	if e.After != "" {
		where = fmt.Sprintf("after sample %q", e.After)
	}
	lost := ""
	if e.Key != "" {
		lost = fmt.Sprintf("; sample %q cut short", e.Key)
	}
	return fmt.Sprintf("wds: %s: unreadable from byte %d, %s (%d samples read%s): %v", e.Shard, e.Offset, where, e.Samples, lost, e.Err)
}

// Unwrap returns the layer's own error (io.ErrUnexpectedEOF, tar.ErrHeader, …).
func (e *DamageError) Unwrap() error { return e.Err }

// Next returns the next sample, or io.EOF after the last one. A sample is
// the run of consecutive members sharing a key; within it each extension
// appears once. Directories are skipped.
//
// A member that cannot belong to a sample comes back as a *MemberError
// (errors.Is(err, ErrSkipped)); call Next again to go on. Damage that makes
// the rest of the archive unreadable comes back as a *DamageError, and then
// again on every call. Every sample completed before the damage is returned
// first. A sample is complete when the member after it, even a damaged one,
// names another key; when the damage hides that (the archive ends, or a
// header is unreadable, right after one of its members) the sample is
// returned only when it has the same extensions as the sample before it,
// since a sample cut between two members must not pass for a whole one.
func (r *Reader) Next() (*Sample, error) {
	if len(r.skipped) > 0 {
		err := r.skipped[0]
		r.skipped = r.skipped[1:]
		return nil, err
	}
	if r.err != nil {
		return nil, r.err
	}
	var s *Sample
	var twice *MemberError // set when s holds an extension twice: s is left out
	if r.pending != nil {
		s = &Sample{Key: r.pending.key, Files: map[string][]byte{r.pending.ext: r.pending.data}}
		r.pending = nil
	}
	for {
		m, err := r.member()
		var me *MemberError
		var de *DamageError
		switch {
		case errors.As(err, &me):
			if s == nil {
				return nil, err
			}
			r.skipped = append(r.skipped, err) // reported after s
			continue
		case errors.Is(err, io.EOF):
			r.err = io.EOF
			return r.finish(s, twice)
		case errors.As(err, &de):
			return r.damaged(s, twice, de)
		case err != nil:
			return nil, err
		}
		switch {
		case s == nil:
			s = &Sample{Key: m.key, Files: map[string][]byte{m.ext: m.data}}
		case m.key != s.Key:
			r.pending = m
			return r.finish(s, twice)
		case twice != nil:
			// The rest of a sample being left out goes with it.
		default:
			if _, dup := s.Files[m.ext]; dup {
				twice = &MemberError{Shard: r.name, Name: m.name, Key: s.Key, Offset: m.offset,
					Reason: fmt.Sprintf("extension %q appears twice in sample %q: the sample is left out", m.ext, s.Key)}
				continue
			}
			s.Files[m.ext] = m.data
		}
	}
}

// finish returns s (nil at the end), or the error that leaves it out.
func (r *Reader) finish(s *Sample, twice *MemberError) (*Sample, error) {
	switch {
	case s == nil:
		return nil, r.err
	case twice != nil:
		return nil, twice
	}
	r.n++
	r.last, r.shape = s.Key, shapeOf(s)
	return s, nil
}

// damaged records de as the shard's end and returns s first when it was
// complete (see Next).
func (r *Reader) damaged(s *Sample, twice *MemberError, de *DamageError) (*Sample, error) {
	keep := false
	if s != nil {
		if de.Key != "" {
			keep = de.Key != s.Key // the damaged member began the next sample
		} else {
			keep = r.n > 0 && shapeOf(s) == r.shape
			if !keep {
				de.Key = s.Key
			}
		}
	}
	if keep && twice == nil {
		r.n++
		r.last, r.shape = s.Key, shapeOf(s)
	}
	de.Samples, de.After = r.n, r.last
	r.err = de
	switch {
	case keep && twice != nil:
		return nil, twice
	case keep:
		return s, nil
	}
	return nil, de
}

// shapeOf is a sample's extensions, sorted and joined.
func shapeOf(s *Sample) string {
	exts := make([]string, 0, len(s.Files))
	for e := range s.Files {
		exts = append(exts, e)
	}
	sort.Strings(exts)
	return strings.Join(exts, ",")
}

type member struct {
	name, key, ext string
	offset         int64 // of its header
	data           []byte
}

// member reads the next regular file member; a member to leave out is a
// *MemberError (its data skipped), damage a *DamageError, the archive's
// proper end io.EOF.
func (r *Reader) member() (*member, error) {
	for {
		at := r.dataEnd
		h, err := r.tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, r.checkEnd()
		}
		if err != nil {
			return nil, r.damage("", err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		skip := func(key, why string) error {
			// Read its data (a link's is empty) so that a cut inside it is
			// found here, and the next header starts clean.
			if _, err := io.Copy(io.Discard, r.tr); err != nil {
				return r.damage("", noEOF(err))
			}
			r.dataEnd = r.cr.n + pad(h.Size)
			return &MemberError{Shard: r.name, Name: h.Name, Key: key, Offset: at, Reason: why}
		}
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
			r.dataEnd = r.cr.n
			continue
		case tar.TypeReg:
		default:
			key, _, _ := splitName(name)
			return nil, skip(key, fmt.Sprintf("type %q is not a regular file", h.Typeflag))
		}
		key, ext, why := splitName(name)
		if why != "" {
			return nil, skip("", why)
		}
		if h.Size < 0 || h.Size > r.maxSize {
			return nil, skip(key, fmt.Sprintf("size %d over the limit %d", h.Size, r.maxSize))
		}
		// Grow with the data actually read: a header may lie about the size.
		var buf bytes.Buffer
		buf.Grow(int(min(h.Size, 4<<20)))
		if _, err := io.CopyN(&buf, r.tr, h.Size); err != nil {
			return nil, r.damage(key, noEOF(err))
		}
		r.dataEnd = r.cr.n + pad(h.Size)
		return &member{name: name, key: key, ext: ext, offset: at, data: buf.Bytes()}, nil
	}
}

// pad is the zero padding after n bytes of member data.
func pad(n int64) int64 { return (512 - n%512) % 512 }

// damage is a *DamageError at the end of the last intact member; key is the
// sample whose member was being read, when known.
func (r *Reader) damage(key string, err error) *DamageError {
	// The padding after the last member may itself be cut.
	return &DamageError{Shard: r.name, Offset: min(r.dataEnd, r.cr.n), Key: key, Err: err}
}

// errNoEnd: the stream ended at a block boundary without the end-of-archive
// block (archive/tar reports that as a clean end).
var errNoEnd = errors.New("no end-of-archive block: the shard was cut short")

// checkEnd verifies that the archive ended with an end-of-archive block
// after the last member's padded data.
func (r *Reader) checkEnd() error {
	if r.cr.n == 0 {
		return r.damage("", errors.New("empty file, not a tar"))
	}
	if r.cr.n < r.dataEnd+512 {
		return r.damage("", errNoEnd)
	}
	return io.EOF
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
