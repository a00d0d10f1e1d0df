package wds

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarMember is one entry of a hand-built test archive.
type tarMember struct {
	name string
	typ  byte
	data []byte
}

// builtTar is a tar stream and, for each sample, the stream offset right
// after its last member's padded data (where a cut "at the sample boundary"
// falls).
type builtTar struct {
	data []byte
	ends []int64 // ends[i]: end of sample i's last member's padded data
	// dataEnds[i]: end of sample i's last member's data (before padding)
	dataEnds []int64
	// memberAt[i][j]: offset of the header of member j of sample i
	memberAt [][]int64
}

// buildSamples writes n samples of three members each (jpg, txt, cls; the
// jpg's size varies across 512-byte block edges) and inserts extra members
// after the samples named in after (sample index → members).
func buildSamples(t testing.TB, n int, after map[int][]tarMember) builtTar {
	return buildSized(t, n, func(i int) int { return 100 + (i*137)%1500 }, after)
}

// buildSized is buildSamples with sample i's jpg of jpgSize(i) bytes.
func buildSized(t testing.TB, n int, jpgSize func(int) int, after map[int][]tarMember) builtTar {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var bt builtTar
	var lastData int64
	write := func(m tarMember) {
		typ := m.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: m.name, Typeflag: typ, Size: int64(len(m.data)), Mode: 0o644}
		if typ == tar.TypeSymlink {
			h.Linkname, h.Size = "/etc/passwd", 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write(m.data)
		}
		lastData = int64(buf.Len())
		tw.Flush()
	}
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("%06d", i)
		var at []int64
		for j, ext := range []string{"jpg", "txt", "cls"} {
			at = append(at, int64(buf.Len()))
			data := []byte(fmt.Sprintf("%s member %d", key, j))
			if ext == "jpg" {
				data = bytes.Repeat([]byte{byte(i)}, jpgSize(i))
			}
			write(tarMember{name: key + "." + ext, data: data})
		}
		bt.memberAt = append(bt.memberAt, at)
		bt.ends = append(bt.ends, int64(buf.Len()))
		bt.dataEnds = append(bt.dataEnds, lastData)
		for _, m := range after[i] {
			write(m)
		}
	}
	tw.Close()
	bt.data = buf.Bytes()
	return bt
}

// readKeys reads a stream to its end, going on after any error the reader
// says it can go on after (at most 50 in a row, so that a sticky error
// cannot loop forever), and returns the keys read and the errors met.
func readKeys(t testing.TB, data []byte) (keys []string, errs []error) {
	r, err := NewStreamReader(bytes.NewReader(data), "x.tar", None)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100000; i++ {
		s, err := r.Next()
		if errors.Is(err, io.EOF) {
			return keys, errs
		}
		if err != nil {
			errs = append(errs, err)
			if len(errs) > 50 || !errors.Is(err, ErrSkipped) {
				return keys, errs
			}
			continue
		}
		keys = append(keys, s.Key)
	}
	t.Fatal("reader never ended")
	return
}

func seqKeys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%06d", i)
	}
	return out
}

// TestDamageAtSampleBoundary is issue 12 case 1: a shard cut right after a
// sample (no end-of-archive block), part-way into the next header, or in the
// next sample's data keeps every sample before the cut, and the damage names
// the last good sample and where the archive stops being readable.
func TestDamageAtSampleBoundary(t *testing.T) {
	bt := buildSamples(t, 100, nil)
	cases := []struct {
		name  string
		cut   int64
		keep  int    // samples returned: 0..keep-1
		after string // key of the last good sample
		lost  string // key of the sample the damage hit, "" when unknown
	}{
		{"after sample 60", bt.ends[60], 61, "000060", ""},
		{"inside the next header", bt.ends[60] + 100, 61, "000060", ""},
		{"inside the next sample's first member", bt.memberAt[61][0] + 600, 61, "000060", "000061"},
		{"inside sample 60's second member", bt.memberAt[60][1] + 520, 60, "000059", "000060"},
		{"between sample 60's members", bt.memberAt[60][2], 60, "000059", "000060"},
		{"inside the end-of-archive blocks", int64(len(bt.data)) - 700, 100, "000099", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys, errs := readKeys(t, bt.data[:tc.cut])
			if strings.Join(keys, ",") != strings.Join(seqKeys(tc.keep), ",") {
				t.Fatalf("read %d samples (last %q), want the %d before the damage", len(keys), last(keys), tc.keep)
			}
			if len(errs) != 1 {
				t.Fatalf("errors %v, want one damage error", errs)
			}
			var de *DamageError
			if !errors.As(errs[0], &de) {
				t.Fatalf("error %v (%T) is not a *DamageError", errs[0], errs[0])
			}
			if de.After != tc.after || de.Key != tc.lost || de.Samples != tc.keep || de.Shard != "x.tar" {
				t.Fatalf("damage %+v, want after %q, key %q, %d samples", de, tc.after, tc.lost, tc.keep)
			}
			msg := de.Error()
			for _, want := range []string{"x.tar", tc.after, fmt.Sprint(de.Offset)} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// TestBadMemberSkipped is issue 12 case 2: a member with an unsafe or
// unusable name (or of another type) is reported and skipped; every sample
// around it is read.
func TestBadMemberSkipped(t *testing.T) {
	bt := buildSamples(t, 500, map[int][]tarMember{
		249: {{name: "../evil.txt", data: []byte("x")}},
		300: {{name: "/etc/evil.jpg", data: []byte("x")}},
		350: {{name: "000350x", data: []byte("no extension")}},
		400: {{name: "000400.lnk", typ: tar.TypeSymlink}},
		450: {{name: "a/../../b.jpg", data: []byte("x")}},
	})
	keys, errs := readKeys(t, bt.data)
	if strings.Join(keys, ",") != strings.Join(seqKeys(500), ",") {
		t.Fatalf("read %d samples (last %q), want all 500; errors %v", len(keys), last(keys), errs)
	}
	wants := []struct{ name, reason string }{
		{"../evil.txt", `".." in path`},
		{"/etc/evil.jpg", "absolute path"},
		{"000350x", "no extension"},
		{"000400.lnk", "not a regular file"},
		{"a/../../b.jpg", `".." in path`},
	}
	if len(errs) != len(wants) {
		t.Fatalf("errors %v, want %d", errs, len(wants))
	}
	for i, w := range wants {
		var me *MemberError
		if !errors.As(errs[i], &me) || me.Name != w.name || !strings.Contains(me.Reason, w.reason) || !errors.Is(errs[i], ErrSkipped) {
			t.Errorf("error %d: %v, want a skipped member %q (%s)", i, errs[i], w.name, w.reason)
		}
	}
}

// A sample holding one extension twice is dropped whole (which copy is
// right cannot be told), reported once, and reading goes on.
func TestDuplicateMemberDropsSample(t *testing.T) {
	bt := buildSamples(t, 5, map[int][]tarMember{
		1: {{name: "000002.jpg", data: []byte("a")}, {name: "000002.jpg", data: []byte("b")}, {name: "000002.cls", data: []byte("1")}},
	})
	// Sample 2 now follows with its own three members: jpg appears three times.
	keys, errs := readKeys(t, bt.data)
	if strings.Join(keys, ",") != "000000,000001,000003,000004" {
		t.Fatalf("keys %v", keys)
	}
	var me *MemberError
	if len(errs) != 1 || !errors.As(errs[0], &me) || me.Key != "000002" || !strings.Contains(me.Reason, "twice") {
		t.Fatalf("errors %v", errs)
	}
}

func TestExpectedSamples(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(SizesFile, `{"000000.tar": 500}`)
	write("000001_stats.json", `{"count": 10, "successes": 9}`)
	write("index.json", `{"__kind__": "wids-shard-index-v1", "wids_version": 1, "shardlist": [{"url": "shards/000002.tar.gz", "nsamples": 77}]}`)
	write("other.json", `{"shardlist": [{"url": "000003.tar", "nsamples": 5}]}`) // not a wids index
	for _, tc := range []struct {
		shard string
		n     int
		from  string
		ok    bool
	}{
		{"000000.tar", 500, SizesFile, true},
		{"000001.tar", 9, "000001_stats.json", true},
		{"000002.tar.gz", 77, "index.json", true},
		{"000003.tar", 0, "", false},
	} {
		n, from, ok := ExpectedSamples(filepath.Join(dir, tc.shard))
		if n != tc.n || ok != tc.ok || filepath.Base(from) != filepath.Base(tc.from) && tc.ok {
			t.Errorf("%s: %d from %q (%v), want %d from %q", tc.shard, n, from, ok, tc.n, tc.from)
		}
	}
	if lost, how := EstimateLost(filepath.Join(dir, "000000.tar"), 61, 1000); lost != 439 || !strings.Contains(how, "500 expected") {
		t.Errorf("lost %d (%s), want 439", lost, how)
	}
	// Unknown count: a plain tar damaged in its middle extrapolates by bytes.
	write("000004.tar", strings.Repeat("x", 4000))
	if lost, _ := EstimateLost(filepath.Join(dir, "000004.tar"), 10, 1000); lost != 30 {
		t.Errorf("extrapolated %d lost, want 30", lost)
	}
	if lost, _ := EstimateLost(filepath.Join(dir, "000005.tar.zst"), 10, 1000); lost != 1 {
		t.Errorf("unknown count gave %d lost, want 1", lost)
	}
}

// A compressed shard cut short keeps an intact prefix and ends in a
// *DamageError, for each compression.
func TestDamageCompressed(t *testing.T) {
	samples := randomSamples(60, 3)
	for _, comp := range []Compression{Gzip, Zstd} {
		t.Run(comp.Ext(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "000000"+comp.Ext())
			w, err := Create(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range samples {
				w.Write(s)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			os.WriteFile(path, b[:len(b)*6/10], 0o644)
			r, err := NewReader(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			n := 0
			for {
				s, err := r.Next()
				var de *DamageError
				if errors.As(err, &de) {
					if de.Samples != n || n == 0 || n >= len(samples) {
						t.Fatalf("damage after %d samples: %v", n, de)
					}
					return
				}
				if err != nil {
					t.Fatalf("after %d samples: %v, want a *DamageError", n, err)
				}
				if s.Key != samples[n].Key || !bytes.Equal(s.Files["jpg"], samples[n].Files["jpg"]) {
					t.Fatalf("sample %d differs", n)
				}
				n++
			}
		})
	}
}
