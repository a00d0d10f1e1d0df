package cli

import (
	"strings"
	"testing"
)

// TestTuneFlagErrors: bad tune input is refused with the flag or file named,
// before any training starts.
func TestTuneFlagErrors(t *testing.T) {
	dir := t.TempDir()
	base := []string{"tune", "--cache", dir + "/cache", "--classes", dir + "/classes.json", "--vocab", dir + "/vocab.txt.gz", "--out", dir + "/run"}
	cases := []struct {
		name  string
		extra []string
		want  string
	}{
		{"needs its inputs", nil, "Required flag"},
		{"rejects arguments", append(base[1:], "extra"), `unexpected argument "extra"`},
		{"schedule", append(base[1:], "--schedule", "linear"), "--schedule"},
		{"batch size", append(base[1:], "--batch-size", "1"), "--batch-size 1"},
		{"epochs", append(base[1:], "--epochs", "0"), "--epochs 0"},
		{"captions", append(base[1:], "--captions", "both"), "--captions"},
		{"beta", append(base[1:], "--beta2", "1"), "beta2"},
		{"text model", append(base[1:], "--text-model", dir+"/nomodel.json"), "nomodel.json"},
		{"eval templates", append(base[1:], "--eval-templates", dir+"/none.txt"), "none.txt"},
		{"vocabulary", base[1:], "vocab.txt.gz"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runEvalSweepDemo(t, append([]string{"tune"}, tc.extra...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}
