package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/wds"
)

// TestMain lets the test binary stand in for litcache: with
// LITCACHE_TEST_MAIN=1 it runs the command line it was given, as main does,
// so the tests below drive a real process (signals, exit status, a fresh
// native-library state per run).
func TestMain(m *testing.M) {
	if os.Getenv("LITCACHE_TEST_MAIN") == "1" {
		os.Exit(run(append([]string{"litcache"}, os.Args[1:]...), os.Stderr))
	}
	os.Exit(m.Run())
}

// litcache starts the binary with args; env is added to the environment.
func litcache(env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "LITCACHE_TEST_MAIN=1"), env...)
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	return cmd, &out, &errw
}

// shards writes n shards of per samples into dir (with sizes.json) and
// returns the brace pattern naming them.
func shards(t *testing.T, dir string, n, per int) string {
	t.Helper()
	sw, err := wds.NewShardWriter(wds.ShardOptions{Dir: dir, MaxCount: per})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n*per; i++ {
		jpg, err := imageproc.EncodeJPEG(imageproc.TestPattern(48, 40, uint64(i+1)), 85)
		if err != nil {
			t.Fatal(err)
		}
		s := &wds.Sample{Key: fmt.Sprintf("%07d", i), Files: map[string][]byte{
			"jpg": jpg, "txt": []byte(fmt.Sprintf("a photo of class %d", i%5)), "cls": []byte(fmt.Sprint(i % 5))}}
		if err := sw.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, fmt.Sprintf("{%06d..%06d}.tar", 0, n-1))
}

func extractArgs(pattern, cache string, extra ...string) []string {
	return append([]string{"extract", "--shards", pattern, "--model", "clip-tiny", "--weights", "random:0",
		"--cache", cache, "--device", "cpu", "--threads", "2", "--quiet"}, extra...)
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// SIGINT exits 130, after the parts whose rows were embedded are committed;
// a rerun resumes from them.
func TestInterruptExits130(t *testing.T) {
	dir := t.TempDir()
	const n = 40
	pattern := shards(t, filepath.Join(dir, "shards"), n, 30)
	cache := filepath.Join(dir, "cache")
	cmd, out, errw := litcache(nil, extractArgs(pattern, cache)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if m, _ := filepath.Glob(filepath.Join(cache, "done", "*.json")); len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no part committed within 2 minutes\n%s", errw)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := exitCode(err); code != 130 {
		t.Fatalf("exit status %d after SIGINT, want 130\nstdout:\n%s\nstderr:\n%s", code, out, errw)
	}
	if !strings.Contains(errw.String(), "interrupt") {
		t.Errorf("stderr does not say it was interrupted:\n%s", errw)
	}
	done, _ := filepath.Glob(filepath.Join(cache, "done", "*.json"))
	if len(done) == 0 || len(done) == n {
		t.Fatalf("%d of %d parts committed: the interrupt did not land mid-run", len(done), n)
	}
	if tmp, _ := filepath.Glob(filepath.Join(cache, "parts", "*.tmp")); len(tmp) > 0 {
		t.Errorf("temp parts left: %v", tmp)
	}
	cmd, out, errw = litcache(nil, extractArgs(pattern, cache)...)
	if err := cmd.Run(); err != nil {
		t.Fatalf("resume: %v\n%s", err, errw)
	}
	// Parts committed after the snapshot above (the writer finishes the
	// shard in hand) are done too: at least as many as seen.
	var skipped int
	fmt.Sscanf(out.String()[strings.Index(out.String(), "shards, ")+len("shards, "):], "%d already done", &skipped)
	if skipped < len(done) || !strings.Contains(out.String(), fmt.Sprintf("%d samples", (n-skipped)*30)) {
		t.Fatalf("resume after %d committed parts:\n%s", len(done), out)
	}
}

// A run whose JPEG decoder differs (libjpeg-turbo hidden) is refused by a
// cache made with libjpeg-turbo unless --allow-mixed-producers is given;
// cache info and verify then show the two producers.
func TestMixedProducersCLI(t *testing.T) {
	if _, ok := imageproc.TurboJPEG(); !ok {
		t.Skip("libjpeg-turbo is not installed: the two runs would have the same decoder")
	}
	dir := t.TempDir()
	pattern := shards(t, filepath.Join(dir, "shards"), 2, 3)
	first := filepath.Join(dir, "shards", "000000.tar")
	cache := filepath.Join(dir, "cache")
	cmd, _, errw := litcache(nil, extractArgs(first, cache)...)
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, errw)
	}
	pure := []string{"LITCACHE_NO_NATIVE=1"}
	cmd, _, errw = litcache(pure, extractArgs(pattern, cache)...)
	err := cmd.Run()
	if exitCode(err) != 1 || !strings.Contains(errw.String(), "--allow-mixed-producers") || !strings.Contains(errw.String(), "cpu/float32/go") {
		t.Fatalf("pure-Go decoder into a libjpeg-turbo cache: %v\n%s", err, errw)
	}
	cmd, _, errw = litcache(pure, extractArgs(pattern, cache, "--allow-mixed-producers")...)
	if err := cmd.Run(); err != nil {
		t.Fatalf("with --allow-mixed-producers: %v\n%s", err, errw)
	}
	cmd, out, _ := litcache(nil, "cache", "info", cache)
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "producers    2: the cache mixes them") ||
		!strings.Contains(out.String(), "cpu/float32/libjpeg-turbo") || !strings.Contains(out.String(), "written with --allow-mixed-producers") {
		t.Fatalf("cache info: %v\n%s", err, out)
	}
	cmd, out, _ = litcache(nil, "cache", "verify", cache)
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "producers: cpu/float32/libjpeg-turbo: 1 parts") ||
		!strings.Contains(out.String(), "warning part train.000001 was made by cpu/float32/go") {
		t.Fatalf("cache verify: %v\n%s", err, out)
	}
}

// SIGINT stops tune after it wrote the checkpoint of the step it reached,
// and exits 130.
func TestTuneInterruptExits130(t *testing.T) {
	dir := t.TempDir()
	mini := filepath.Join(dir, "mini")
	for _, args := range [][]string{
		{"caption", "--synthetic", mini, "--species", "6", "--out", filepath.Join(mini, "shards")},
		extractArgs(filepath.Join(mini, "shards", "000000.tar"), filepath.Join(dir, "cache")),
	} {
		cmd, _, errw := litcache(nil, args...)
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", args[0], err, errw)
		}
	}
	// clip-tiny's shapes with CLIP's vocabulary, which tune tokenizes with.
	model := filepath.Join(dir, "text.json")
	os.WriteFile(model, []byte(`{"embed_dim":32,"vision_cfg":{"image_size":32,"patch_size":8,"width":64,"layers":2,"head_width":16,"mlp_ratio":4},`+
		`"text_cfg":{"context_length":32,"vocab_size":49408,"width":64,"heads":4,"layers":2,"mlp_ratio":4},"quick_gelu":true}`), 0o644)
	run := filepath.Join(dir, "run")
	cmd, out, errw := litcache(nil, "tune", "--cache", filepath.Join(dir, "cache"), "--classes", filepath.Join(mini, "shards", "classes.json"),
		"--model", model, "--out", run, "--epochs", "100000", "--batch-size", "8", "--device", "cpu", "--quiet")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if b, _ := os.ReadFile(filepath.Join(run, "metrics.jsonl")); bytes.Contains(b, []byte(`"step"`)) {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no step within 2 minutes\n%s", errw)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if code := exitCode(err); code != 130 {
		t.Fatalf("exit status %d after SIGINT, want 130\nstdout:\n%s\nstderr:\n%s", code, out, errw)
	}
	var step int
	var ckpt string
	i := strings.Index(errw.String(), "interrupted at step ")
	if i < 0 {
		t.Fatalf("stderr:\n%s", errw)
	}
	fmt.Sscanf(errw.String()[i:], "interrupted at step %d (checkpoint %s", &step, &ckpt)
	ckpt = strings.TrimSuffix(strings.TrimSuffix(ckpt, ":"), ")")
	if _, err := os.Stat(ckpt); err != nil || !strings.HasSuffix(ckpt, fmt.Sprintf("step-%07d", step)) {
		t.Fatalf("checkpoint %q of step %d: %v\n%s", ckpt, step, err, errw)
	}
}
