package weights

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadConfig: a built-in name, a file, and the three errors a --model
// argument can meet (a bare word that is neither, a missing path, a file
// its family cannot parse), each naming what was given.
func TestLoadConfig(t *testing.T) {
	builtin := func(name string) (string, bool) { return "builtin:" + name, name == "tiny" }
	names := func() []string { return []string{"tiny", "small"} }
	errBad := errors.New("fam: bad config")
	parse := func(b []byte) (string, error) {
		if string(b) == "bad" {
			return "", errBad
		}
		return "file:" + string(b), nil
	}
	load := func(arg string) (string, error) { return LoadConfig("fam", arg, builtin, names, parse) }

	if c, err := load("tiny"); err != nil || c != "builtin:tiny" {
		t.Errorf("built-in: %q %v", c, err)
	}
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.json"), filepath.Join(dir, "bad.json")
	os.WriteFile(good, []byte("cfg"), 0o644)
	os.WriteFile(bad, []byte("bad"), 0o644)
	if c, err := load(good); err != nil || c != "file:cfg" {
		t.Errorf("file: %q %v", c, err)
	}
	for _, tc := range []struct{ arg, want string }{
		{"huge", `fam: model "huge" is neither a built-in (tiny, small) nor a file`},
		{filepath.Join(dir, "none.json"), "fam: model config: open " + filepath.Join(dir, "none.json")},
		{bad, "fam: bad config (in " + bad + ")"},
	} {
		_, err := load(tc.arg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.arg, err, tc.want)
		}
	}
	if _, err := load(bad); !errors.Is(err, errBad) {
		t.Errorf("the family's parse error is not wrapped: %v", err)
	}
}
