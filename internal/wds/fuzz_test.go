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
