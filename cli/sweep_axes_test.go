package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSweepPathAxes: the list flags are checked value by value, and the
// pairing of --val-cache with --cache, before any device opens.
func TestSweepPathAxes(t *testing.T) {
	a, b, out := t.TempDir(), t.TempDir(), t.TempDir()
	cls := filepath.Join(t.TempDir(), "classes.json")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"second cache missing", []string{"--cache", a + "," + filepath.Join(b, "nope"), "--classes", a}, "nope"},
		{"second classes file missing", []string{"--cache", a, "--classes", a + "," + cls}, "classes.json"},
		{"unpaired val caches", []string{"--cache", a + "," + b, "--val-cache", a, "--classes", a}, "--val-cache has 1 values for 2 --cache values"},
		{"none is not tune's word", []string{"--cache", a, "--classes", a, "--weights", "none," + a}, `spelled "random"`},
		{"text weights missing", []string{"--cache", a, "--classes", a, "--weights", "random,random:2," + filepath.Join(b, "w.safetensors")}, "w.safetensors"},
		{"val split needs a val cache", []string{"--cache", a + "," + b, "--classes", a, "--val-split", "val"}, "--val-split does nothing without --val-cache"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, errw, err := runCommand(t, append(append([]string{"sweep", "--out", out}, tc.args...), "--warmup", "1")...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(stdout+errw, "device:") {
				t.Errorf("a device was opened before the flag error")
			}
		})
	}
}
