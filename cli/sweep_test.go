package cli

import (
	"strings"
	"testing"
)

func TestEvalSweepDemoFlagErrors(t *testing.T) {
	dir := t.TempDir()
	cache := t.TempDir()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"eval needs its inputs", []string{"eval"}, "eval: --cache is required"},
		{"eval rejects arguments", []string{"eval", "--cache", "c", "--classes", "k", "--weights", "t", "extra"}, `unexpected argument "extra"`},
		{"eval names a missing input", []string{"eval", "--cache", dir, "--classes", dir + "/none.json", "--weights", "t"}, "none.json"},
		{"eval random weights need a model", []string{"eval", "--cache", dir, "--classes", dir, "--weights", "random:1"}, "--model"},
		{"eval subject with caption templates", []string{"eval", "--cache", dir, "--classes", dir, "--weights", "random:1", "--subject", "name"}, "--subject does nothing with --templates caption"},
		{"sweep needs a cache", []string{"sweep", "--classes", "k", "--out", dir}, "sweep: --cache is required"},
		{"sweep list values are checked", []string{"sweep", "--cache", cache, "--classes", "k", "--out", dir, "--warmup", "500,x"}, `--warmup: "x" is not an integer`},
		{"sweep lr list", []string{"sweep", "--cache", cache, "--classes", "k", "--out", dir, "--lr", "1e-3,fast"}, `--lr: "fast" is not a number`},
		{"sweep member outside the grid", []string{"sweep", "--cache", cache, "--classes", "k", "--out", dir, "--warmup", "1,2", "--member", "2"}, "outside the grid of 2"},
		{"sweep names a missing input", []string{"sweep", "--cache", cache, "--classes", dir + "/none.json", "--out", dir}, "none.json"},
		{"sweep bad member value", []string{"sweep", "--cache", cache, "--classes", "k", "--out", dir, "--beta2", "1"}, "beta2"},
		{"sweep summarize needs a folder", []string{"sweep", "summarize"}, "want one sweep folder"},
		{"sweep summarize of a non-sweep", []string{"sweep", "summarize", dir}, "sweep folder"},
		{"demo epochs", []string{"demo", "--out", dir, "--epochs", "0"}, "--epochs 0"},
		{"demo batch larger than the data", []string{"demo", "--out", dir, "--species", "2", "--train-per-species", "3", "--batch-size", "64"}, "exceeds the 6 training images"},
		{"demo warm-up list", []string{"demo", "--out", dir, "--warmup", "5,-1"}, "--warmup -1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errw, err := runCommand(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(out+errw, "device:") {
				t.Errorf("a device was opened before the flag error:\n%s%s", out, errw)
			}
		})
	}
}

func TestEvalSweepDemoHelp(t *testing.T) {
	for _, cmd := range []string{"eval", "sweep", "demo"} {
		out, _, err := runCommand(t, cmd, "--help")
		if err != nil || !strings.Contains(out, "litcache "+cmd) {
			t.Errorf("%s --help: %v\n%s", cmd, err, out)
		}
	}
}
