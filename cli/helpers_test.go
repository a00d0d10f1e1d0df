package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// runApp runs litcache with args, stdin as input, and returns stdout.
func runApp(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	app := App()
	var out bytes.Buffer
	app.Reader = strings.NewReader(stdin)
	app.Writer = &out
	app.ErrWriter = &out
	err := app.Run(append([]string{"litcache"}, args...))
	return out.String(), err
}

// runCommand runs litcache with args and returns stdout and stderr apart.
func runCommand(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	app := App()
	var out, errw bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errw
	app.ExitErrHandler = func(*cli.Context, error) {}
	err := app.RunContext(context.Background(), append([]string{"litcache"}, args...))
	return out.String(), errw.String(), err
}
