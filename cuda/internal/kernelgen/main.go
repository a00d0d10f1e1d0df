// Command kernelgen writes cuda/kernels_gen.go: one typed Go launch wrapper
// per extern "C" kernel of cuda/kernels/*.cu, one per INSTANTIATE family
// (choosing _f32 or _bf16 by the table's precision), the table of loaded
// functions, and a map from kernel names to wrappers that the wrapper test
// checks against the prototypes. Run by `go generate ./cuda` (from cuda/).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/litcache/litcache/cuda/internal/kernelgen/gen"
)

func main() {
	dir := flag.String("dir", "kernels", "folder of the .cu sources")
	out := flag.String("o", "kernels_gen.go", "output file")
	flag.Parse()
	src, err := gen.Generate(os.DirFS(*dir))
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "kernelgen: wrote %s\n", *out)
}
