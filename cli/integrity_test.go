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
	"github.com/litcache/litcache/internal/wds"
)

// Issue 12's six cases as a user meets them: through the commands, judged
// by exit status and output.

// shardOpts shape a test shard: keep only the first cut samples and end the
// file right after them (no end-of-archive block); extra members after a
// sample's index.
type shardOpts struct {
	cut   int
	extra map[int][]string
}

// writeSeqShard writes n good samples keyed PREFIX_i (i zero-padded to 4).
func writeSeqShard(t *testing.T, path, prefix string, n int, o shardOpts) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	keep := n
	if o.cut > 0 {
		keep = o.cut
	}
	for i := 0; i < keep; i++ {
		jpg, err := imageproc.EncodeJPEG(imageproc.TestPattern(36, 30, uint64(i+1)), 90)
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("%s_%04d", prefix, i)
		add(key+".jpg", jpg)
		add(key+".txt", []byte("a photo of class "+fmt.Sprint(i%3)))
		add(key+".cls", []byte(fmt.Sprint(i%3)))
		for _, name := range o.extra[i] {
			add(name, []byte("x"))
		}
	}
	tw.Close()
	b := buf.Bytes()
	if o.cut > 0 {
		b = b[:len(b)-1024]
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// extractArgs is an extract command line over shards into cache.
func extractArgs(shards, cache string, extra ...string) []string {
	return append([]string{"extract", "--shards", shards, "--model", "clip-tiny", "--weights", "random:0", "--cache", cache,
		"--threads", "2", "--device", "cpu", "--quiet", "--max-reject-fraction", "0.5"}, extra...)
}

func mustRun(t *testing.T, args ...string) (string, string) {
	t.Helper()
	out, errw, err := runCommand(t, args...)
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args[:2], " "), err, out, errw)
	}
	return out, errw
}

func TestCLICase1CutShardKeepsLastSample(t *testing.T) {
	dir := t.TempDir()
	shard := filepath.Join(dir, "cut-000000.tar")
	writeSeqShard(t, shard, "c", 100, shardOpts{cut: 61})
	cache := filepath.Join(dir, "cache")
	out, errw := mustRun(t, extractArgs(shard, cache)...)
	if !strings.Contains(out, "61 rows") {
		t.Errorf("extract kept other than the 61 samples before the cut:\n%s", out)
	}
	if !strings.Contains(errw, `after sample "c_0060"`) {
		t.Errorf("stderr does not name the last good sample:\n%s", errw)
	}
	if out, _ := mustRun(t, "cache", "get", cache, "c_0060"); !strings.Contains(out, `"key":"c_0060"`) {
		t.Errorf("cache get c_0060:\n%s", out)
	}
	rej, _ := os.ReadFile(filepath.Join(cache, "rejects.jsonl"))
	if bytes.Contains(rej, []byte(`"key":""`)) || !bytes.Contains(rej, []byte(`"after":"c_0060"`)) {
		t.Errorf("rejects.jsonl:\n%s", rej)
	}
}

func TestCLICase2BadMemberAndUnreadSamples(t *testing.T) {
	dir := t.TempDir()
	shard := filepath.Join(dir, "evil-000000.tar")
	writeSeqShard(t, shard, "e", 40, shardOpts{extra: map[int][]string{20: {"../evil.txt"}, 30: {"/etc/evil.jpg"}}})
	cache := filepath.Join(dir, "cache")
	out, _ := mustRun(t, extractArgs(shard, cache)...)
	if !strings.Contains(out, "40 rows, 2 rejected") {
		t.Errorf("extract over a shard with two bad members:\n%s", out)
	}
	info, _ := mustRun(t, "cache", "info", cache)
	if !strings.Contains(info, `member left out: ".." in path`) || !strings.Contains(info, "member left out: absolute path") {
		t.Errorf("cache info does not show the member rejects:\n%s", info)
	}

	// A shard that gave 30 of the 100 samples its sizes.json promises fails
	// --max-reject-fraction 0.5, its 30 samples kept.
	sd := filepath.Join(dir, "sized")
	writeSeqShard(t, filepath.Join(sd, "000000.tar"), "s", 100, shardOpts{cut: 30})
	wds.WriteSizes(sd, map[string]int{"000000.tar": 100})
	out, errw, err := runCommand(t, extractArgs(filepath.Join(sd, "000000.tar"), filepath.Join(dir, "sized-cache"))...)
	if err == nil || !strings.Contains(err.Error(), "--max-reject-fraction") || !strings.Contains(out, "30 rows") {
		t.Fatalf("a shard that gave 30 of 100: err %v\nstdout:\n%s\nstderr:\n%s", err, out, errw)
	}
	if !strings.Contains(errw, "70 never read") {
		t.Errorf("stderr does not count the samples never read:\n%s", errw)
	}
}

func TestCLICase3LostManifest(t *testing.T) {
	dir := t.TempDir()
	pattern := filepath.Join(dir, "train-{000000..000001}.tar")
	for i := 0; i < 2; i++ {
		writeSeqShard(t, filepath.Join(dir, fmt.Sprintf("train-%06d.tar", i)), fmt.Sprintf("s%d", i), 4, shardOpts{})
	}
	cache := filepath.Join(dir, "cache")
	mustRun(t, extractArgs(pattern, cache)...)
	os.Remove(filepath.Join(cache, "manifest.json"))
	if _, _, err := runCommand(t, "cache", "info", cache); err == nil || !strings.Contains(err.Error(), "cache index") {
		t.Errorf("cache info without a manifest: %v (want it to say how to rebuild it)", err)
	}
	other := extractArgs(pattern, cache)
	for i, a := range other {
		if a == "random:0" {
			other[i] = "random:1"
		}
	}
	out, errw, err := runCommand(t, other...)
	if err == nil || !strings.Contains(err.Error(), "fingerprint mismatch") {
		t.Fatalf("another tower after the manifest was lost: %v\n%s%s", err, out, errw)
	}
	out, _ = mustRun(t, extractArgs(pattern, cache)...)
	if !strings.Contains(out, "2 shards, 2 already done") {
		t.Errorf("the same tower:\n%s", out)
	}
	if info, _ := mustRun(t, "cache", "info", cache); !strings.Contains(info, "train") {
		t.Errorf("cache info after the rebuild:\n%s", info)
	}
}

func TestCLICase4SameNameOtherShard(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "shards", "000000.tar")
	second := filepath.Join(dir, "other", "000000.tar")
	writeSeqShard(t, first, "a", 4, shardOpts{})
	writeSeqShard(t, second, "b", 5, shardOpts{})
	cache := filepath.Join(dir, "cache")
	mustRun(t, extractArgs(first, cache)...)
	_, _, err := runCommand(t, extractArgs(second, cache)...)
	if err == nil || !strings.Contains(err.Error(), first) || !strings.Contains(err.Error(), second) {
		t.Fatalf("other/000000.tar into a cache holding shards/000000.tar: %v", err)
	}
}

func TestCLICase5DamagedPartRedone(t *testing.T) {
	dir := t.TempDir()
	pattern := filepath.Join(dir, "train-{000000..000001}.tar")
	for i := 0; i < 2; i++ {
		writeSeqShard(t, filepath.Join(dir, fmt.Sprintf("train-%06d.tar", i)), fmt.Sprintf("s%d", i), 4, shardOpts{})
	}
	cache := filepath.Join(dir, "cache")
	mustRun(t, extractArgs(pattern, cache)...)
	part := filepath.Join(cache, "parts", "train.train-000001.arrow")
	st, _ := os.Stat(part)
	os.Truncate(part, st.Size()/2)
	out, errw := mustRun(t, extractArgs(pattern, cache)...)
	if !strings.Contains(out, "2 shards, 1 already done") || !strings.Contains(errw, "making it again") {
		t.Fatalf("rerun over a truncated part:\nstdout:\n%s\nstderr:\n%s", out, errw)
	}
	if out, _ := mustRun(t, "cache", "verify", cache); !strings.Contains(out, "ok: 2 parts, 8 rows") {
		t.Errorf("verify after the redo:\n%s", out)
	}

	// A flipped byte leaves size and footer alone: only --verify finds it.
	b, _ := os.ReadFile(part)
	b[len(b)/2] ^= 1
	os.WriteFile(part, b, 0o644)
	if out, _ := mustRun(t, extractArgs(pattern, cache)...); !strings.Contains(out, "2 already done") {
		t.Errorf("without --verify:\n%s", out)
	}
	if out, _ := mustRun(t, extractArgs(pattern, cache, "--verify")...); !strings.Contains(out, "1 already done") {
		t.Errorf("with --verify:\n%s", out)
	}
}

func TestCLICase6FailedStartDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	shard := filepath.Join(dir, "train-000000.tar")
	writeSeqShard(t, shard, "s", 3, shardOpts{})
	bad := filepath.Join(dir, "corrupt.safetensors")
	os.WriteFile(bad, []byte("\x10\x00\x00\x00\x00\x00\x00\x00{not json at all"), 0o644)
	cache := filepath.Join(dir, "cache")
	args := extractArgs(shard, cache)
	for i, a := range args {
		if a == "random:0" {
			args[i] = bad
		}
	}
	if _, _, err := runCommand(t, args...); err == nil {
		t.Fatal("corrupt weights accepted")
	}
	mustRun(t, extractArgs(shard, cache)...)
}

// cache get's notes go to stderr: stdout is JSON lines only.
func TestCLICacheGetNoteOnStderr(t *testing.T) {
	dir := t.TempDir()
	shard := filepath.Join(dir, "train-000000.tar")
	writeSeqShard(t, shard, "s", 3, shardOpts{})
	cache := filepath.Join(dir, "cache")
	mustRun(t, extractArgs(shard, cache, "--views", "2")...)
	out, errw := mustRun(t, "cache", "get", cache, "s_0001")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout holds %d lines, want the 2 views' JSON:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "{") {
			t.Errorf("stdout line is not JSON: %q", l)
		}
	}
	if !strings.Contains(errw, "scanning the parts") {
		t.Errorf("the no-index note is not on stderr: %q", errw)
	}
}
