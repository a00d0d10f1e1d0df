package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/litcache/litcache/internal/half"
)

// copyTree copies the files under src into dst (no fsync: tests only).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	// One cache built (with its fsyncs and index) once, copied per case.
	tmpl := t.TempDir()
	c, err := Create(tmpl, testManifest(8, Float16, 2))
	if err != nil {
		t.Fatal(err)
	}
	fillPart(t, c, "train", "s-000000.tar", 10, 1, map[int]bool{2: true})
	fillPart(t, c, "train", "s-000001.tar", 10, 2, nil)
	if _, err := BuildIndex(tmpl, IndexOptions{}); err != nil {
		t.Fatal(err)
	}
	build := func(t *testing.T) string {
		dir := t.TempDir()
		copyTree(t, tmpl, dir)
		return dir
	}
	t.Run("clean", func(t *testing.T) {
		dir := build(t)
		rep, err := Verify(dir, VerifyOptions{ExpectFingerprint: "sha256:test-tower"})
		if err != nil || !rep.OK() || !rep.IndexChecked || rep.Keys != 19 || rep.Rows != 38 || rep.Rejects != 1 || len(rep.Warnings) != 0 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
	for _, tc := range []struct {
		name   string
		damage func(dir string)
		want   string
	}{
		{"flipped byte", func(dir string) {
			p := partPath(dir, "train.s-000001")
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x40
			os.WriteFile(p, b, 0o644)
		}, "sha256"},
		{"part missing", func(dir string) { os.Remove(partPath(dir, "train.s-000000")) }, "no such file"},
		{"rejects missing", func(dir string) { os.Remove(rejectsPath(dir, "train.s-000000")) }, "rejects file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := build(t)
			tc.damage(dir)
			rep, err := Verify(dir, VerifyOptions{})
			if !errors.Is(err, ErrCorrupt) || rep.OK() || !strings.Contains(strings.Join(rep.Problems, "\n"), tc.want) {
				t.Fatalf("%+v %v", rep, err)
			}
		})
	}
	t.Run("orphan part is a warning", func(t *testing.T) {
		dir := build(t)
		os.WriteFile(partPath(dir, "train.s-000009")+".tmp", []byte("half"), 0o644)
		rep, err := Verify(dir, VerifyOptions{})
		if err != nil || !rep.OK() || len(rep.Warnings) != 1 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
	t.Run("stale index is a warning", func(t *testing.T) {
		dir := build(t)
		c, _ := Create(dir, testManifest(8, Float16, 2))
		fillPart(t, c, "val", "v-000000.tar", 2, 3, nil)
		rep, err := Verify(dir, VerifyOptions{})
		if err != nil || rep.IndexChecked || !strings.Contains(strings.Join(rep.Warnings, "\n"), "index") {
			t.Fatalf("%+v %v", rep, err)
		}
	})
}

func TestExportCLIPRetrieval(t *testing.T) {
	for _, dtype := range []string{Float16, Float32} {
		t.Run(dtype, func(t *testing.T) {
			dir := t.TempDir()
			c, err := Create(dir, testManifest(8, dtype, 2))
			if err != nil {
				t.Fatal(err)
			}
			a := fillPart(t, c, "train", "s-000000.tar", 5, 1, nil)
			fillPart(t, c, "train", "s-000001.tar", 3, 2, nil)
			out := filepath.Join(t.TempDir(), "export")
			st, err := ExportCLIPRetrieval(dir, out, ExportOptions{})
			if err != nil || st.Files != 2 || st.Rows != 8 {
				t.Fatalf("%+v %v", st, err)
			}
			npy, err := os.ReadFile(filepath.Join(out, "img_emb", "img_emb_0.npy"))
			if err != nil {
				t.Fatal(err)
			}
			hl := int(binary.LittleEndian.Uint16(npy[8:]))
			header := string(npy[10 : 10+hl])
			descr := map[string]string{Float16: "<f2", Float32: "<f4"}[dtype]
			if !bytes.HasPrefix(npy, []byte("\x93NUMPY\x01\x00")) || (10+hl)%64 != 0 || !strings.Contains(header, "'descr': '"+descr+"'") || !strings.Contains(header, "(5, 8)") {
				t.Fatalf("npy header %q", header)
			}
			body := npy[10+hl:]
			size := map[string]int{Float16: 2, Float32: 4}[dtype]
			if len(body) != 5*8*size {
				t.Fatalf("npy body %d bytes", len(body))
			}
			// Row 1 of the file is sample 1's view 0 (row 2 of the part).
			var got float32
			if dtype == Float16 {
				got = half.F16ToF32(binary.LittleEndian.Uint16(body[(1*8+3)*2:]))
			} else {
				got = math.Float32frombits(binary.LittleEndian.Uint32(body[(1*8+3)*4:]))
			}
			want := a[2].emb[3]
			if dtype == Float16 {
				want = half.F16ToF32(half.F32ToF16(want))
			}
			if got != want {
				t.Fatalf("npy value %v, want %v", got, want)
			}
			pf, err := file.OpenParquetFile(filepath.Join(out, "metadata", "metadata_0.parquet"), false)
			if err != nil {
				t.Fatal(err)
			}
			defer pf.Close()
			fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
			if err != nil {
				t.Fatal(err)
			}
			tbl, err := fr.ReadTable(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer tbl.Release()
			if tbl.NumRows() != 5 || tbl.NumCols() != 4 || tbl.Schema().Field(0).Name != "image_path" || tbl.Schema().Field(1).Name != "caption" {
				t.Fatalf("metadata table %v", tbl.Schema())
			}
		})
	}
}

// TestVerifyManyParts damages every third of 12 parts: checkParts runs them
// on several goroutines, and the report must still list the problems in the
// parts' order, count only the sound parts, and report progress that never
// goes back and ends at the bytes of all parts.
func TestVerifyManyParts(t *testing.T) {
	dir := t.TempDir()
	c, err := Create(dir, testManifest(8, Float16, 1))
	if err != nil {
		t.Fatal(err)
	}
	const parts = 12
	var total int64
	for i := 0; i < parts; i++ {
		fillPart(t, c, "train", fmt.Sprintf("s-%06d.tar", i), 20+i, int64(i), nil)
		st, err := os.Stat(partPath(dir, PartName("train", fmt.Sprintf("s-%06d.tar", i))))
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	var damaged []string
	for i := 0; i < parts; i += 3 {
		name := PartName("train", fmt.Sprintf("s-%06d.tar", i))
		p := partPath(dir, name)
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0x40
		os.WriteFile(p, b, 0o644)
		damaged = append(damaged, name)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4)) // several workers even on a 1-core runner
	var last int64
	monotonic := true
	rep, err := Verify(dir, VerifyOptions{Progress: func(n int64) {
		if n < last {
			monotonic = false
		}
		last = n
	}})
	if !errors.Is(err, ErrCorrupt) || len(rep.Problems) != len(damaged) {
		t.Fatalf("want %d problems, got %+v %v", len(damaged), rep, err)
	}
	for i, name := range damaged {
		if !strings.Contains(rep.Problems[i], "part "+name+": sha256") {
			t.Errorf("problem %d: %q, want part %s's sha256 (the parts' order)", i, rep.Problems[i], name)
		}
	}
	if rep.Parts != parts-len(damaged) {
		t.Errorf("%d sound parts counted, want %d", rep.Parts, parts-len(damaged))
	}
	if !monotonic || last != total {
		t.Errorf("progress monotonic=%v, ended at %d bytes, want %d", monotonic, last, total)
	}
}
