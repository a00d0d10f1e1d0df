package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// runEvalSweepDemo runs the litcache app with args and returns stdout and the error.
func runEvalSweepDemo(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := App()
	var out, errw bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errw
	app.ExitErrHandler = func(*cli.Context, error) {}
	err := app.RunContext(context.Background(), append([]string{"litcache"}, args...))
	return out.String(), err
}

func TestEvalSweepDemoFlagErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"eval needs its inputs", []string{"eval"}, "Required flag"},
		{"eval rejects arguments", []string{"eval", "--cache", "c", "--classes", "k", "--text", "t", "--vocab", "v", "extra"}, `unexpected argument "extra"`},
		{"eval names a missing input", []string{"eval", "--cache", dir, "--classes", dir + "/none.json", "--text", "t", "--vocab", "v"}, "none.json"},
		{"sweep needs a cache", []string{"sweep", "--classes", "k", "--vocab", "v", "--out", dir}, "--cache is required"},
		{"sweep list values are checked", []string{"sweep", "--cache", "c", "--classes", "k", "--vocab", "v", "--out", dir, "--warmup", "500,x"}, `--warmup: "x" is not an integer`},
		{"sweep lr list", []string{"sweep", "--cache", "c", "--classes", "k", "--vocab", "v", "--out", dir, "--lr", "1e-3,fast"}, `--lr: "fast" is not a number`},
		{"sweep member outside the grid", []string{"sweep", "--cache", "c", "--classes", "k", "--vocab", "v", "--out", dir, "--warmup", "1,2", "--member", "2"}, "outside the grid of 2"},
		{"sweep summarize needs a folder", []string{"sweep", "summarize"}, "want one sweep folder"},
		{"sweep summarize of a non-sweep", []string{"sweep", "summarize", dir}, "sweep folder"},
		{"demo epochs", []string{"demo", "--out", dir, "--epochs", "0"}, "--epochs 0"},
		{"demo batch larger than the data", []string{"demo", "--out", dir, "--species", "2", "--train-per-species", "3", "--batch-size", "64"}, "exceeds the 6 training images"},
		{"demo warm-up list", []string{"demo", "--out", dir, "--warmup", "5,-1"}, "--warmup -1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runEvalSweepDemo(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestEvalSweepDemoHelp(t *testing.T) {
	for _, cmd := range []string{"eval", "sweep", "demo"} {
		out, err := runEvalSweepDemo(t, cmd, "--help")
		if err != nil || !strings.Contains(out, "litcache "+cmd) {
			t.Errorf("%s --help: %v\n%s", cmd, err, out)
		}
	}
}
