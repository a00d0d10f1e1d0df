package wds

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func randomSamples(n int, seed int64) []*Sample {
	rng := rand.New(rand.NewSource(seed))
	out := make([]*Sample, n)
	for i := range out {
		jpg := make([]byte, rng.Intn(3000)) // sizes across 512-byte block edges, 0 included
		rng.Read(jpg)
		out[i] = &Sample{Key: fmt.Sprintf("%09d", i), Files: map[string][]byte{
			"jpg":  jpg,
			"txt":  []byte(fmt.Sprintf("A photo of the thing %d", i)),
			"json": []byte(fmt.Sprintf(`{"image_id":%d}`, i)),
			"cls":  []byte(fmt.Sprint(i % 7)),
		}}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	samples := randomSamples(40, 1)
	for _, comp := range []Compression{None, Gzip, Zstd} {
		t.Run(comp.Ext(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "000000"+comp.Ext())
			w, err := Create(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range samples {
				if err := w.Write(s); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("shard visible before Close: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("temporary file left: %v", err)
			}
			got, err := ReadAll(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(samples) {
				t.Fatalf("%d samples back, wrote %d", len(got), len(samples))
			}
			for i := range got {
				if got[i].Key != samples[i].Key || len(got[i].Files) != 4 {
					t.Fatalf("sample %d: key %q, %d files", i, got[i].Key, len(got[i].Files))
				}
				for ext, want := range samples[i].Files {
					if !bytes.Equal(got[i].Files[ext], want) {
						t.Fatalf("sample %d .%s: bytes differ", i, ext)
					}
				}
			}
		})
	}
}

func TestShardWriterRotation(t *testing.T) {
	samples := randomSamples(25, 2)
	cases := []struct {
		name     string
		opt      ShardOptions
		wantSize []int
	}{
		{"by count", ShardOptions{MaxCount: 10}, []int{10, 10, 5}},
		{"by bytes", ShardOptions{MaxBytes: 5 * 4096}, nil},
		{"one shard", ShardOptions{}, []int{25}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.Dir = t.TempDir()
			sw, err := NewShardWriter(tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range samples {
				if err := sw.Write(s); err != nil {
					t.Fatal(err)
				}
			}
			if err := sw.Close(); err != nil {
				t.Fatal(err)
			}
			shards := sw.Shards()
			sizes, err := ReadSizes(tc.opt.Dir)
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			var back []*Sample
			for i, sh := range shards {
				if sh.Name != fmt.Sprintf("%06d.tar", i) || sizes[sh.Name] != sh.Count {
					t.Fatalf("shard %d: %+v, sizes.json %d", i, sh, sizes[sh.Name])
				}
				if tc.wantSize != nil && sh.Count != tc.wantSize[i] {
					t.Fatalf("shard %d holds %d, want %d", i, sh.Count, tc.wantSize[i])
				}
				if tc.opt.MaxBytes > 0 && sh.Bytes > tc.opt.MaxBytes && sh.Count > 1 {
					t.Fatalf("shard %d: %d bytes over the %d limit", i, sh.Bytes, tc.opt.MaxBytes)
				}
				fi, _ := os.Stat(filepath.Join(tc.opt.Dir, sh.Name))
				if fi.Size() < sh.Bytes {
					t.Fatalf("shard %d: file %d bytes < counted %d", i, fi.Size(), sh.Bytes)
				}
				got, err := ReadAll(filepath.Join(tc.opt.Dir, sh.Name))
				if err != nil {
					t.Fatal(err)
				}
				back = append(back, got...)
				total += sh.Count
			}
			if tc.wantSize == nil && len(shards) < 2 {
				t.Fatalf("byte limit made %d shards", len(shards))
			}
			if total != len(samples) || !reflect.DeepEqual(back, samples) {
				t.Fatalf("read back %d samples (equal: %v)", len(back), reflect.DeepEqual(back, samples))
			}
		})
	}
}

// rawTar builds a tar with the given member names, bypassing Writer's checks.
func rawTar(t *testing.T, names ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		typ := byte(tar.TypeReg)
		link := ""
		if strings.HasPrefix(n, "symlink:") {
			n, typ, link = strings.TrimPrefix(n, "symlink:"), tar.TypeSymlink, "/etc/passwd"
		}
		data := []byte("x")
		if typ != tar.TypeReg {
			data = nil
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: typ, Linkname: link, Size: int64(len(data)), Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	return buf.Bytes()
}

func TestReaderRejects(t *testing.T) {
	cases := []struct {
		name  string
		names []string
		want  string
	}{
		{"dot dot", []string{"../x.jpg"}, `".." in path`},
		{"dot dot inside", []string{"a/../../x.jpg"}, `".." in path`},
		{"dot dot bare", []string{"../x"}, `".." in path`},
		{"absolute", []string{"/etc/x.jpg"}, "absolute path"},
		{"empty key", []string{".jpg"}, "empty key"},
		{"no extension", []string{"000001"}, "no extension"},
		{"symlink", []string{"symlink:000001.jpg"}, "not a regular file"},
		{"duplicate member", []string{"a.jpg", "a.txt", "a.jpg"}, "appears twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewStreamReader(bytes.NewReader(rawTar(t, tc.names...)), "x.tar", None)
			if err != nil {
				t.Fatal(err)
			}
			var nerr error
			for nerr == nil {
				_, nerr = r.Next()
			}
			if errors.Is(nerr, io.EOF) || !strings.Contains(nerr.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", nerr, tc.want)
			}
		})
	}
	// Directories are skipped, "./" prefixes dropped, keys may hold folders.
	r, _ := NewStreamReader(bytes.NewReader(rawTar(t, "./a/1.jpg", "./a/1.seg.png", "a/2.jpg")), "x.tar", None)
	s1, err1 := r.Next()
	s2, err2 := r.Next()
	_, err3 := r.Next()
	if err1 != nil || err2 != nil || !errors.Is(err3, io.EOF) || s1.Key != "a/1" || len(s1.Files) != 2 || s1.Files["seg.png"] == nil || s2.Key != "a/2" {
		t.Fatalf("got %+v %v, %+v %v, %v", s1, err1, s2, err2, err3)
	}
	// A truncated shard is an error, never a silent short read.
	full := rawTar(t, "a.jpg", "b.jpg")
	r, _ = NewStreamReader(bytes.NewReader(full[:700]), "x.tar", None)
	var err error
	for err == nil {
		_, err = r.Next()
	}
	if errors.Is(err, io.EOF) {
		t.Fatalf("truncated shard read without error")
	}
}

func TestWriterRejects(t *testing.T) {
	cases := []struct {
		name string
		s    *Sample
		want string
	}{
		{"dot dot key", &Sample{Key: "../x", Files: map[string][]byte{"jpg": nil}}, `".."`},
		{"absolute key", &Sample{Key: "/x", Files: map[string][]byte{"jpg": nil}}, "absolute"},
		{"empty key", &Sample{Key: "", Files: map[string][]byte{"jpg": nil}}, "empty sample key"},
		{"dot in key", &Sample{Key: "a.b", Files: map[string][]byte{"jpg": nil}}, "dot in the key"},
		{"bad ext", &Sample{Key: "a", Files: map[string][]byte{"/jpg": nil}}, "extension"},
		{"no files", &Sample{Key: "a"}, "no files"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.tar")
			w, err := Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			if err := w.Write(tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	dir := t.TempDir()
	w, _ := Create(filepath.Join(dir, "x.tar"))
	w.Write(&Sample{Key: "a", Files: map[string][]byte{"jpg": nil}})
	if err := w.Write(&Sample{Key: "a", Files: map[string][]byte{"txt": nil}}); err == nil {
		t.Fatal("duplicate key accepted")
	}
	w.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("abort left %v", ents)
	}
	if _, err := Create(filepath.Join(dir, "x.zip")); err == nil {
		t.Fatal("x.zip accepted as a shard name")
	}
}

func TestExpandPattern(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  string
	}{
		{"a.tar", []string{"a.tar"}, ""},
		{"train-{000000..000002}.tar", []string{"train-000000.tar", "train-000001.tar", "train-000002.tar"}, ""},
		{"{train,val}-{0..1}.tar", []string{"train-0.tar", "train-1.tar", "val-0.tar", "val-1.tar"}, ""},
		{"x{8..10}", []string{"x8", "x9", "x10"}, ""},
		{"x{3..1}", nil, "end before start"},
		{"x{a..b}", nil, "integers"},
		{"x{1..2", nil, "unclosed"},
		{"x}", nil, "unmatched"},
		{"x{}", nil, "empty braces"},
		{"x{{1..2}}", nil, "nested"},
		{"x{0..99999999}", nil, "more than"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ExpandPattern(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}

func TestSizesMerge(t *testing.T) {
	dir := t.TempDir()
	if err := UpdateSizes(dir, map[string]int{"000000.tar": 3}); err != nil {
		t.Fatal(err)
	}
	if err := UpdateSizes(dir, map[string]int{"000001.tar": 2}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSizes(dir)
	if err != nil || !reflect.DeepEqual(got, map[string]int{"000000.tar": 3, "000001.tar": 2}) {
		t.Fatalf("got %v, %v", got, err)
	}
}

// rawTarF is rawTar for fuzz seeds (no *testing.T).
func rawTarF(names ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Size: 3, Mode: 0o644})
		tw.Write([]byte("abc"))
	}
	tw.Close()
	return buf.Bytes()
}
