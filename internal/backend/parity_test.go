package backend_test

import (
	"fmt"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/backend/backendtest"
)

// The CPU backend's paths against each other: OpenBLAS (when present) and the
// pure-Go GEMM (assembly micro-kernel where the CPU has one, multi-threaded)
// against the single-threaded pure-Go GEMM with the portable Go micro-kernel. All are
// float32 with float32 GEMM accumulation in different orders; on these small
// shapes the relative errors are ~1e-7, so 1e-5 leaves room without hiding a
// wrong index (which gives errors of order 1).
func TestParityCPUPaths(t *testing.T) {
	ref := backend.NewCPUPortable(1)
	for _, got := range append([]*backend.CPU{backend.NewCPUWith(backend.CPUOptions{PreferBLAS: true})}, backend.NewCPUEachKernel(3)...) {
		t.Run(fmt.Sprintf("%s/%s/threads%d", got.Name(), got.GemmKernel(), got.Threads()), func(t *testing.T) {
			backendtest.Parity(t, ref, got, 1e-5)
		})
	}
}
