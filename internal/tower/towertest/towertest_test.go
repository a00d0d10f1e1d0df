package towertest

import (
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

// TestCPU: the check itself, on the float32 CPU backend, at the families'
// own parity tolerance (1e-5; measured up to 3.7e-7 here).
func TestCPU(t *testing.T) { Check(t, backend.NewCPU(), 1e-5) }
