package parity

import (
	"math"
	"testing"
)

// TestRelErr: the norm ratio, the length mismatch that must fail a
// tolerance check, and the all-zero reference.
func TestRelErr(t *testing.T) {
	for _, c := range []struct {
		got  []float32
		want []float64
		e    float64
	}{
		{[]float32{1, 2}, []float64{1, 2}, 0},
		{[]float32{0, 0}, []float64{3, 4}, 1},
		{[]float32{3, 5}, []float64{3, 4}, 0.2},
		{[]float32{3, 4}, []float64{0, 0}, 5},
		{[]float32{1}, []float64{1, 2}, math.Inf(1)},
	} {
		if e := RelErr(c.got, c.want); math.Abs(e-c.e) > 1e-12 && e != c.e {
			t.Errorf("RelErr(%v, %v) = %g, want %g", c.got, c.want, e, c.e)
		}
	}
	if e := RelErr([]float32{1}, []float64{1, 2}); e <= 1e-5 {
		t.Error("a shorter result passes a tolerance check")
	}
}
