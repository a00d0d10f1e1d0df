package bench

import (
	"context"
	"os"
	"testing"
)

// BenchmarkMatmulHarness runs the "matmul" bench as `litcache bench matmul`
// does and prints its figures (go test -run X -bench MatmulHarness ./cli/bench).
func BenchmarkMatmulHarness(b *testing.B) {
	for b.Loop() {
		if err := Matmul.Run(context.Background(), func(f Figure) { Print(os.Stdout, f) }); err != nil {
			b.Fatal(err)
		}
	}
}
