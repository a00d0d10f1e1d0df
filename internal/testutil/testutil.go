// Package testutil finds the files tests read: the reference fixtures copied
// into testdata/ (a missing one fails the test) and the real data under
// ../shared/data (absent in a user's fresh clone: the test is skipped with a
// message saying so).
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot is the folder holding go.mod, found upwards from the working directory.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("testutil: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Testdata returns the path of rel under the repository's testdata/ and fails
// the test when it does not exist: reference files are never optional.
func Testdata(tb testing.TB, rel string) string {
	tb.Helper()
	p := filepath.Join(RepoRoot(tb), "testdata", rel)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("reference file missing: %v", err)
	}
	return p
}

// FixtureDir is the clip-tiny-shaped fixture directory: $LITCACHE_FIXTURE_DIR
// when set, else testdata/clip-tiny. It fails the test when absent.
func FixtureDir(tb testing.TB) string {
	tb.Helper()
	return FixtureDirs(tb, "LITCACHE_FIXTURE_DIR", "clip-tiny")[0]
}

// FixtureDirs is the fixture directories of one kind: $env alone when set
// (another directory of the same kind, to check against), else rels under
// testdata/. A missing directory fails the test.
func FixtureDirs(tb testing.TB, env string, rels ...string) []string {
	tb.Helper()
	if d := os.Getenv(env); d != "" {
		if _, err := os.Stat(d); err != nil {
			tb.Fatalf("%s: %v", env, err)
		}
		return []string{d}
	}
	dirs := make([]string, len(rels))
	for i, rel := range rels {
		dirs[i] = Testdata(tb, rel)
	}
	return dirs
}

// SharedData returns the path of rel under ../shared/data beside the
// repository, or skips the test when that folder is absent (a user's fresh
// clone has no shared/ beside it). LITCACHE_SHARED_DATA overrides the folder.
func SharedData(tb testing.TB, rel string) string {
	tb.Helper()
	dir := os.Getenv("LITCACHE_SHARED_DATA")
	if dir == "" {
		dir = filepath.Join(RepoRoot(tb), "..", "shared", "data")
	}
	p := filepath.Join(dir, rel)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("real data not available (%s absent; it lives in ../shared/data beside the repository)", p)
	}
	return p
}
