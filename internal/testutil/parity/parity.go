// Package parity holds what the towers' parity tests share: reading a
// fixture's reference tensors (a missing file or tensor fails the test) and
// the relative error they are compared by. It is apart from internal/testutil
// because it reads safetensors files, whose own tests use testutil.
package parity

import (
	"math"
	"testing"

	"github.com/litcache/litcache/internal/safetensors"
)

// Open opens a reference safetensors file, failing the test when it cannot
// be read; it is closed when the test ends.
func Open(tb testing.TB, path string) *safetensors.File {
	tb.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		tb.Fatalf("reference file: %v", err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// Float64 reads a reference tensor as float64, with its shape; a missing
// tensor fails the test.
func Float64(tb testing.TB, f *safetensors.File, name string) ([]float64, []int) {
	tb.Helper()
	d, s, err := f.Float64(name)
	if err != nil {
		tb.Fatalf("reference tensor %s: %v", name, err)
	}
	return d, s
}

// Float32 reads a reference tensor as float32, with its shape; a missing
// tensor fails the test.
func Float32(tb testing.TB, f *safetensors.File, name string) ([]float32, []int) {
	tb.Helper()
	d, s, err := f.Float32(name)
	if err != nil {
		tb.Fatalf("reference tensor %s: %v", name, err)
	}
	return d, s
}

// ToFloat32 rounds float64 values to float32 (a float64 reference's inputs
// as a float32 tower takes them).
func ToFloat32(d []float64) []float32 {
	out := make([]float32, len(d))
	for i, v := range d {
		out[i] = float32(v)
	}
	return out
}

// RelErr is ‖got−want‖/‖want‖ in float64: +Inf when the lengths differ (so
// that a check `e <= tol` fails rather than panics), and the absolute norm
// ‖got−want‖ when want is all zero.
func RelErr(got []float32, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range want {
		d := float64(got[i]) - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}
