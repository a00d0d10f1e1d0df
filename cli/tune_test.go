package cli

import (
	"os"
	"strings"
	"testing"
)

// TestTuneFlagErrors: bad tune input is refused with the flag or file named,
// before any training starts and before a device is opened.
func TestTuneFlagErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(dir+"/cache", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/classes.json", []byte("[]"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"--cache", dir + "/cache", "--classes", dir + "/classes.json", "--out", dir + "/run"}
	cases := []struct {
		name  string
		extra []string
		want  string
	}{
		{"needs its inputs", nil, "tune: --cache is required"},
		{"rejects arguments", append(base, "extra"), `unexpected argument "extra"`},
		{"schedule", append(base, "--schedule", "linear"), "--schedule"},
		{"batch size", append(base, "--batch-size", "1"), "--batch-size 1"},
		{"epochs", append(base, "--epochs", "0"), "--epochs 0"},
		{"captions", append(base, "--captions", "both"), "--captions"},
		{"beta", append(base, "--beta2", "1"), "beta2"},
		{"weights seed", append(base, "--weights", "random:x"), "random:x"},
		{"weights file", append(base, "--weights", dir+"/none.safetensors"), "none.safetensors"},
		{"eval templates", append(base, "--val-cache", dir+"/cache", "--eval-templates", dir+"/none.txt"), "none.txt"},
		{"vocabulary", append(base, "--vocab", dir+"/vocab.txt.gz"), "vocab.txt.gz"},
		{"missing cache", []string{"--cache", dir + "/nocache", "--classes", dir + "/classes.json", "--out", dir + "/run"}, "nocache"},
		{"text model", append(base, "--model", dir+"/nomodel.json"), "nomodel.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errw, err := runCommand(t, append([]string{"tune"}, tc.extra...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(out+errw, "device:") {
				t.Errorf("a device was opened before the flag error:\n%s%s", out, errw)
			}
		})
	}
}
