package emu_test

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/cuda/emu"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/backend/backendtest"
)

// setupErr is why the emulator is unavailable (nil when it is in use).
var setupErr error

func TestMain(m *testing.M) {
	setupErr = emu.Setup()
	if setupErr != nil && !errors.Is(setupErr, emu.ErrUnavailable) {
		fmt.Fprintln(os.Stderr, setupErr)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// open returns a backend on the emulator, or skips where it cannot be built.
func open(t testing.TB, opt cuda.Options) *cuda.Backend {
	t.Helper()
	if setupErr != nil {
		t.Skip(setupErr)
	}
	b, err := cuda.NewBackend(opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEmulatedParityF32 runs every op of the interface on the emulated GPU
// against the CPU reference, each inside its own t.Run goroutine as on a
// real GPU; 1e-4 as TestParityF32 allows (float32 both sides, other orders).
func TestEmulatedParityF32(t *testing.T) {
	backendtest.Parity(t, backend.NewCPU(), open(t, cuda.Options{Precision: cuda.F32}), 1e-4)
}

// TestEmulatedParityBF16: the forward ops in bf16 at TestParityBF16's 2e-2.
func TestEmulatedParityBF16(t *testing.T) {
	g := open(t, cuda.Options{Precision: cuda.BF16})
	backendtest.ParityWith(t, backend.NewCPU(), g, backendtest.Options{Tol: 2e-2, Skip: backendtest.BackwardOps})
}
