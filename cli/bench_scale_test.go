package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchScaleFlags: `bench scale` takes its sizes as flags and refuses
// bad ones before any work; `bench NAME...` still selects by name beside
// the subcommand, and --list names scale.
func TestBenchScaleFlags(t *testing.T) {
	// A --dir that does not exist: should a refusal fail to happen, the run
	// stops at once on it instead of building a cache.
	nowhere := filepath.Join(t.TempDir(), "absent")
	if _, _, err := runCommand(t, "bench", "scale", "--rows", "10", "--quiet", "--dir", nowhere); err == nil || !strings.Contains(err.Error(), "--rows 10") {
		t.Errorf("bench scale --rows 10: %v, want an error naming --rows", err)
	}
	if _, _, err := runCommand(t, "bench", "scale", "--dir", nowhere, "big"); err == nil || !strings.Contains(err.Error(), `unexpected argument "big"`) {
		t.Errorf("bench scale big: %v, want an error naming the argument", err)
	}
	if _, _, err := runCommand(t, "bench", "nope"); err == nil || !strings.Contains(err.Error(), "scale") {
		t.Errorf("bench nope: %v, want the unknown-name error listing the benches, scale among them", err)
	}
	out, _, err := runCommand(t, "bench", "--list")
	if err != nil || !strings.Contains(out, "scale ") {
		t.Errorf("bench --list: %v\n%s", err, out)
	}
}
