package wds

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the tar/sample reader: it must return
// samples or an error, never panic, and never hand out an unsafe key.
func FuzzReader(f *testing.F) {
	seed := rawTarF
	f.Add(seed("000000001.jpg", "000000001.txt", "000000002.jpg"))
	f.Add(seed("../x.jpg"))
	f.Add(seed("a/b.c.d", "a/b.e"))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, 1024))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewStreamReader(bytes.NewReader(data), "fuzz.tar", None)
		if err != nil {
			return
		}
		r.SetMaxMemberSize(1 << 20)
		for i := 0; i < 1000; i++ {
			s, err := r.Next()
			if errors.Is(err, io.EOF) || err != nil {
				return
			}
			if CheckName(s.Key) != nil || len(s.Files) == 0 {
				t.Fatalf("unsafe or empty sample %q", s.Key)
			}
		}
	})
}

// FuzzRoundTrip writes one sample with a fuzzed key and extension: whatever
// the writer accepts must read back as the same sample, byte for byte.
func FuzzRoundTrip(f *testing.F) {
	f.Add("000000042", "jpg", []byte("data"))
	f.Add("dir/sub/key", "seg.png", []byte{})
	f.Add("..", "txt", []byte("x"))
	f.Add("a b", "x y", []byte("\x00"))
	f.Fuzz(func(t *testing.T, key, ext string, data []byte) {
		if ext == "cls" {
			return // would replace the second member
		}
		path := t.TempDir() + "/s.tar"
		w, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		in := &Sample{Key: key, Files: map[string][]byte{ext: data, "cls": []byte("7")}}
		if err := w.Write(in); err != nil {
			w.Abort()
			return
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := ReadAll(path)
		if err != nil {
			t.Fatalf("key %q ext %q: written but unreadable: %v", key, ext, err)
		}
		if len(got) != 1 || got[0].Key != key || !bytes.Equal(got[0].Files[ext], data) || len(got[0].Files) != len(in.Files) {
			t.Fatalf("key %q ext %q: read back %+v", key, ext, got)
		}
	})
}
