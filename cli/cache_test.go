package cli

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/imageproc"
)

// writeCacheTestShard writes a tar of n good samples (keys PREFIX_i) and one
// with an empty image.
func writeCacheTestShard(t *testing.T, path, prefix string, n int) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	for i := 0; i < n; i++ {
		jpg, err := imageproc.EncodeJPEG(imageproc.TestPattern(40, 30, uint64(i+1)), 90)
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("%s_%03d", prefix, i)
		add(key+".jpg", jpg)
		add(key+".txt", []byte("a photo of class "+fmt.Sprint(i%3)))
		add(key+".cls", []byte(fmt.Sprint(i%3)))
	}
	add(prefix+"_empty.jpg", nil)
	tw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestExtractAndCacheCommands(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		writeCacheTestShard(t, filepath.Join(dir, fmt.Sprintf("train-%06d.tar", i)), fmt.Sprintf("s%d", i), 5)
	}
	cache := filepath.Join(dir, "cache")
	pattern := filepath.Join(dir, "train-{000000..000001}.tar")
	out, err := runApp(t, "", "extract", "--shards", pattern, "--model", "clip-tiny", "--weights", "random:0", "--cache", cache, "--views", "2",
		"--max-reject-fraction", "0.2", "--threads", "2", "--device", "cpu", "--quiet")
	if err != nil {
		t.Fatalf("extract: %v\n%s", err, out)
	}
	if !strings.Contains(out, "12 samples, 20 rows, 2 rejected") || !strings.HasPrefix(out, "device: cpu (--device cpu); cpu/float32") {
		t.Fatalf("extract output:\n%s", out)
	}
	fp, err := runApp(t, "", "cache", "fingerprint", "--model", "clip-tiny", "--weights", "random:0")
	if err != nil || !strings.Contains(out, strings.TrimSpace(fp)) {
		t.Fatalf("fingerprint %q (%v) not in the extract output", fp, err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"cache", "info", cache}, []string{strings.TrimSpace(fp), "dim 32, float16, 2 view(s)", "train", "rejects by reason", "image member is empty"}},
		{[]string{"cache", "index", cache}, []string{"indexed 10 keys over 2 parts"}},
		{[]string{"cache", "verify", cache, "--expect-fingerprint", strings.TrimSpace(fp)}, []string{"ok: 2 parts, 20 rows, 10 keys, 2 rejects", "index agrees"}},
		{[]string{"cache", "get", cache, "s1_004"}, []string{`"key":"s1_004"`, `"view":1`, `"label":1`, `"caption":"a photo of class 1"`}},
		{[]string{"cache", "export", cache, "--format", "clip-retrieval", "--out", filepath.Join(dir, "exp")}, []string{"wrote 10 embeddings in 2"}},
	} {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			out, err := runApp(t, "", tc.args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	for _, f := range []string{"img_emb/img_emb_1.npy", "metadata/metadata_1.parquet"} {
		if _, err := os.Stat(filepath.Join(dir, "exp", f)); err != nil {
			t.Error(err)
		}
	}

	t.Run("errors name their input", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"extract", "--shards", filepath.Join(dir, "nope-{0..1}.tar"), "--model", "clip-tiny", "--weights", "random:0", "--cache", cache}, "nope-0.tar"},
			{[]string{"extract", "--shards", pattern, "--model", "clip-tiny", "--weights", "random:0", "--cache", cache, "--dtype", "int8"}, `dtype "int8"`},
			{[]string{"extract", "--shards", pattern, "--model", "clip-tiny", "--weights", dir + "/none.safetensors", "--cache", cache}, "none.safetensors"},
			{[]string{"extract", "--shards", pattern, "--model", "clip-tiny", "--weights", "random:x", "--cache", cache}, `random:x`},
			{[]string{"extract", "--shards", pattern, "--model", "clip-tiny", "--weights", "random:0", "--cache", cache, "--worker", "2", "--workers", "2"}, "--worker 2 --workers 2"},
			{[]string{"extract", "--shards", pattern, "--model", "clip-tiny", "--weights", "random:9", "--cache", cache, "--quiet"}, "fingerprint mismatch"},
			{[]string{"extract", "--shards", pattern, "--model", "clip-tiny", "--weights", "random:0", "--cache", filepath.Join(dir, "c2"), "--quiet"}, "--max-reject-fraction"},
			{[]string{"cache", "verify", cache, "--expect-fingerprint", "sha256:other"}, "sha256:other"},
			{[]string{"cache", "get", cache, "missing"}, `key "missing"`},
			{[]string{"cache", "info", dir}, "not a litcache cache"},
			{[]string{"cache", "export", cache, "--format", "faiss", "--out", dir}, `"faiss"`},
		} {
			out, err := runApp(t, "", tc.args...)
			if err == nil || !strings.Contains(err.Error()+out, tc.want) {
				t.Errorf("%v: err %v, want it to mention %q\n%s", tc.args, err, tc.want, out)
			}
		}
	})
}
