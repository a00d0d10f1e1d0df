package backendtest

import (
	"math"
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

func TestRelErr(t *testing.T) {
	cases := []struct {
		name      string
		got, ref  []float32
		want      float64
		wantWorst int
	}{
		{"equal", []float32{1, 2}, []float32{1, 2}, 0, 0},
		{"relative", []float32{3, 4.5}, []float32{3, 4}, 0.1, 1},
		{"zero reference is absolute", []float32{0, 0.5}, []float32{0, 0}, 0.5, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, w := RelErr(c.got, c.ref)
			if math.Abs(e-c.want) > 1e-12 || w != c.wantWorst {
				t.Errorf("RelErr = %g at %d, want %g at %d", e, w, c.want, c.wantWorst)
			}
		})
	}
}

// The harness itself: one backend against itself with a zero tolerance, which
// also checks that every op is deterministic for equal inputs.
func TestParitySelf(t *testing.T) {
	be := backend.NewCPUWith(backend.CPUOptions{DisableBLAS: true, Threads: 1})
	Parity(t, be, be, 0)
	if len(OpNames()) < 25 {
		t.Errorf("only %d ops checked", len(OpNames()))
	}
}
