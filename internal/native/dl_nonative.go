//go:build nonative

package native

import "errors"

// canLoad: a build with -tags nonative loads no library. Without purego the
// binary links nothing at all, so it runs on an image with no libc
// (distroless static, scratch), on the pure-Go paths: the Go GEMM kernels, the
// pure-Go JPEG decoder, no GPU.
const canLoad = false

var errStatic = errors.New("native: a static build (-tags nonative) loads no library")

func dlopen(string) (uintptr, error) { return 0, errStatic }

func dlsym(uintptr, string) (uintptr, error) { return 0, errStatic }

func register(any, uintptr) { panic(errStatic) }
