package emu_test

import (
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/cuda/emu"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/backend/backendtest"
)

func TestMain(m *testing.M) { emu.Main(m) }

// open returns a backend on the emulator, or skips where it cannot be built.
func open(t testing.TB, opt cuda.Options) *cuda.Backend { return emu.Open(t, opt) }

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
