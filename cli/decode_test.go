package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExtractDecodeFlag: --decode takes gpu, cpu or auto (default auto);
// gpu with --device cpu is a usage error before anything opens, and gpu on
// a machine where --device auto falls back to the CPU is an error naming
// the backend and what it needs, before the cache is made.
func TestExtractDecodeFlag(t *testing.T) {
	dir := t.TempDir()
	shard := filepath.Join(dir, "train-000000.tar")
	if err := os.WriteFile(shard, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	base := []string{"extract", "--shards", shard, "--model", "clip-tiny", "--weights", "random:1", "--cache", cache, "--quiet"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--decode", "nvjpeg"}, `--decode "nvjpeg": want gpu, cpu or auto`},
		{[]string{"--decode", "gpu", "--device", "cpu"}, "--decode gpu decodes on the GPU: it needs --device cuda"},
	} {
		_, _, err := runCommand(t, append(base, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "usage: litcache extract") {
			t.Errorf("%v: %v, want a usage error with %q", c.args, err, c.want)
		}
	}
	_, errw, err := runCommand(t, append(base, "--decode", "gpu", "--device", "auto")...)
	if strings.Contains(errw, "device: cuda") {
		t.Skip("a GPU is here: --device auto chose it")
	}
	if err == nil || !strings.Contains(err.Error(), "--decode gpu: the backend is cpu/float32") || !strings.Contains(err.Error(), "--device cuda") {
		t.Errorf("--decode gpu with the CPU backend: %v", err)
	}
	if _, serr := os.Stat(cache); !os.IsNotExist(serr) {
		t.Errorf("the refused run made its cache (%v)", serr)
	}
	if f := flagsOf(command(t, "extract"))["decode"]; f == nil || !strings.Contains(f.String(), `(default: "auto")`) {
		t.Errorf("--decode: %v", f)
	}
}
