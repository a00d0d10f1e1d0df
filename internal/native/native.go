// Package native finds and loads optional native libraries at run time with
// purego (DESIGN.md decision 1): no cgo and no headers at build time, so one
// binary runs on a machine with or without OpenBLAS, libjpeg-turbo or CUDA.
// Every user of a library keeps a pure-Go fallback for when Open fails.
package native

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// ErrNotFound is returned (wrapped) when no candidate of a library could be loaded.
var ErrNotFound = errors.New("native: library not found")

// Library is a loaded shared object.
type Library struct {
	// Name is the library's short name, e.g. "openblas".
	Name string
	// Path is the soname or file that was loaded.
	Path   string
	handle uintptr
}

// Spec names a library and the sonames to try, most preferred first.
type Spec struct {
	Name    string
	Sonames []string
	// Env names environment variables that may hold an explicit path to the file
	// (tried first), e.g. LITCACHE_OPENBLAS.
	Env []string
}

// SearchDirs returns the folders tried, after the dynamic loader's own path,
// for a soname that the loader did not find by itself: CUDA_PATH/lib64,
// /usr/local/cuda/lib64, the multiarch folders, and Python nvidia/*/lib folders.
func SearchDirs() []string {
	var dirs []string
	if p := os.Getenv("CUDA_PATH"); p != "" {
		dirs = append(dirs, filepath.Join(p, "lib64"), filepath.Join(p, "lib"))
	}
	dirs = append(dirs, "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib")
	switch runtime.GOARCH {
	case "amd64":
		dirs = append(dirs, "/usr/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu/openblas-pthread")
	case "arm64":
		dirs = append(dirs, "/usr/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu/openblas-pthread")
	}
	dirs = append(dirs, "/usr/lib64", "/usr/lib", "/usr/local/lib")
	// pip-installed CUDA wheels: site-packages/nvidia/<component>/lib
	for _, pattern := range []string{
		"/usr/lib/python3*/site-packages/nvidia/*/lib",
		"/usr/local/lib/python3*/dist-packages/nvidia/*/lib",
		"/usr/local/lib/python3*/site-packages/nvidia/*/lib",
		"/opt/conda/lib/python3*/site-packages/nvidia/*/lib",
	} {
		m, _ := filepath.Glob(pattern)
		sort.Strings(m)
		dirs = append(dirs, m...)
	}
	return dirs
}

var (
	mu    sync.Mutex
	cache = map[string]*result{}
)

type result struct {
	lib *Library
	err error
}

// Open loads the first candidate of spec that the system provides. Results are
// remembered per Spec.Name, so repeated calls are cheap.
func Open(spec Spec) (*Library, error) {
	mu.Lock()
	defer mu.Unlock()
	if r, ok := cache[spec.Name]; ok {
		return r.lib, r.err
	}
	lib, err := open(spec)
	cache[spec.Name] = &result{lib, err}
	return lib, err
}

func open(spec Spec) (*Library, error) {
	if os.Getenv("LITCACHE_NO_NATIVE") != "" {
		return nil, fmt.Errorf("%w: %s (LITCACHE_NO_NATIVE is set)", ErrNotFound, spec.Name)
	}
	if !canLoad {
		return nil, fmt.Errorf("%w: %s (a static build, -tags nonative, loads no library)", ErrNotFound, spec.Name)
	}
	var tried []string
	try := func(path string) *Library {
		h, err := dlopen(path)
		if err != nil {
			tried = append(tried, path)
			return nil
		}
		return &Library{Name: spec.Name, Path: path, handle: h}
	}
	for _, env := range spec.Env {
		if p := os.Getenv(env); p != "" {
			if l := try(p); l != nil {
				return l, nil
			}
		}
	}
	for _, so := range spec.Sonames {
		if l := try(so); l != nil {
			return l, nil
		}
	}
	for _, dir := range SearchDirs() {
		for _, so := range spec.Sonames {
			p := filepath.Join(dir, so)
			if _, err := os.Stat(p); err != nil {
				continue
			}
			if l := try(p); l != nil {
				return l, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: %s (tried %s)", ErrNotFound, spec.Name, strings.Join(spec.Sonames, ", "))
}

// Sym returns the address of a symbol, or an error naming it.
func (l *Library) Sym(name string) (uintptr, error) {
	p, err := dlsym(l.handle, name)
	if err != nil {
		return 0, fmt.Errorf("native: %s: symbol %s: %w", l.Name, name, err)
	}
	return p, nil
}

// Has reports whether the library exports name.
func (l *Library) Has(name string) bool {
	_, err := dlsym(l.handle, name)
	return err == nil
}

// Bind sets fptr (a pointer to a func variable) to call the symbol name.
func (l *Library) Bind(fptr any, name string) error {
	p, err := l.Sym(name)
	if err != nil {
		return err
	}
	register(fptr, p)
	return nil
}
