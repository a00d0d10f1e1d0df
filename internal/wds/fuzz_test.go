package wds

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
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

// FuzzDamage checks the reader's promise on damaged archives: every complete
// sample before the damage is returned, byte for byte, in order. The archive
// is n well-formed samples (jpg, txt, cls) of fuzzed sizes, then either cut
// at a fuzzed offset (garbage empty) or overwritten there with garbage.
//
// A sample is complete before the damage when all of its members' data
// lies before it and the reader can tell the sample ended: a later
// header was read whole, or an earlier sample shows the extensions a whole
// one has (see Reader.Next). For a cut archive exactly those samples come
// back and then a *DamageError; for an overwritten one they come back first.
func FuzzDamage(f *testing.F) {
	f.Add(uint8(10), int64(1), uint32(9000), []byte(nil))
	f.Add(uint8(1), int64(2), uint32(700), []byte(nil))
	f.Add(uint8(3), int64(3), uint32(2048), []byte("garbage in a header"))
	f.Add(uint8(5), int64(4), uint32(1), []byte{0})
	f.Fuzz(func(t *testing.T, n uint8, seed int64, cut uint32, garbage []byte) {
		n = n%40 + 1
		rng := rand.New(rand.NewSource(seed))
		sizes := make([]int, n)
		for i := range sizes {
			sizes[i] = rng.Intn(1600)
		}
		bt := buildSized(t, int(n), func(i int) int { return sizes[i] }, nil)
		data := bt.data
		at := int64(cut) % int64(len(data)+1)
		overwrite := len(garbage) > 0
		if overwrite {
			data = append([]byte(nil), data...)
			copy(data[at:], garbage)
		} else {
			data = data[:at]
		}
		damaged := overwrite || at < int64(len(bt.data))
		complete := 0
		for i := range bt.ends {
			known := i > 0 || !damaged || (n > 1 && at >= bt.memberAt[1][0]+512)
			if bt.dataEnds[i] > at || !known {
				break
			}
			complete++
		}
		if !damaged {
			complete = int(n)
		}

		r, err := NewStreamReader(bytes.NewReader(data), "fuzz.tar", None)
		if err != nil {
			t.Fatal(err)
		}
		var got []*Sample
		var end error
		for len(got) <= int(n)+1 {
			s, err := r.Next()
			if err != nil {
				end = err
				break
			}
			got = append(got, s)
		}
		if len(got) < complete {
			t.Fatalf("%d samples back (then %v), %d were complete before the damage at byte %d", len(got), end, complete, at)
		}
		for i := 0; i < complete; i++ {
			want := fmt.Sprintf("%06d", i)
			if got[i].Key != want || len(got[i].Files) != 3 || len(got[i].Files["jpg"]) != sizes[i] {
				t.Fatalf("sample %d: key %q, %d members, jpg %d bytes; want %q, 3, %d", i, got[i].Key, len(got[i].Files), len(got[i].Files["jpg"]), want, sizes[i])
			}
		}
		if overwrite {
			return // what follows garbage may read as anything but unsafe keys (FuzzReader)
		}
		var de *DamageError
		switch {
		case len(got) != complete:
			t.Fatalf("%d samples back, only %d were complete before the cut at byte %d: an incomplete one passed", len(got), complete, at)
		case damaged && !errors.As(end, &de):
			t.Fatalf("cut at byte %d of %d: ended with %v, want a *DamageError", at, len(bt.data), end)
		case damaged && (de.Samples != complete || de.Offset > at):
			t.Fatalf("damage %+v: want %d samples, offset ≤ %d", de, complete, at)
		case !damaged && !errors.Is(end, io.EOF):
			t.Fatalf("whole archive ended with %v", end)
		}
	})
}
