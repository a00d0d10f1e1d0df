package emu

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/litcache/litcache/cuda"
)

// mainErr is why Main could not put the emulator in place (nil when it is
// in use); mainRan tells whether Main ran at all.
var (
	mainErr error
	mainRan bool
)

// Main is the TestMain of a package with emulated-GPU tests: it puts the
// emulator in place (Setup) before any test can load CUDA, then runs the
// tests. Where the emulator cannot be built (ErrUnavailable: no g++, not
// x86-64 Linux, LITCACHE_NO_NATIVE) the tests run and Open skips; any other
// failure to build it stops the run.
func Main(m *testing.M) {
	mainErr, mainRan = Setup(), true
	if mainErr != nil && !errors.Is(mainErr, ErrUnavailable) {
		fmt.Fprintln(os.Stderr, mainErr)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// Err is why the emulator is not in use: nil after a successful Main.
func Err() error {
	if !mainRan {
		return errors.New("emu: the package's TestMain is not emu.Main")
	}
	return mainErr
}

// Open opens a CUDA backend on the emulator Main put in place, or skips the
// test where it could not be built.
func Open(tb testing.TB, opt cuda.Options) *cuda.Backend {
	tb.Helper()
	if !mainRan {
		tb.Fatal(Err())
	}
	if mainErr != nil {
		tb.Skip(mainErr)
	}
	b, err := cuda.NewBackend(opt)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
