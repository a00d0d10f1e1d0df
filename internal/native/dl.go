//go:build !nonative

package native

import "github.com/ebitengine/purego"

// canLoad: this build loads libraries. purego makes the binary link the
// system's libc and dynamic loader (without cgo), which dlopen needs.
const canLoad = true

func dlopen(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

func dlsym(handle uintptr, name string) (uintptr, error) { return purego.Dlsym(handle, name) }

func register(fptr any, p uintptr) { purego.RegisterFunc(fptr, p) }
