package cuda

import (
	"embed"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/litcache/litcache/cuda/internal/kernelproto"
)

//go:embed kernels/*.cu kernels/*.cuh
var kernelFS embed.FS

// KernelSource is one embedded .cu file, with the prelude prepended.
type KernelSource struct {
	Name string // file name without .cu, e.g. "rows"
	Src  string
	// Raw is the file as written, without the prelude.
	Raw string
}

// Prelude is the header every kernel source starts with (kernels/prelude.cuh).
func Prelude() (string, error) {
	b, err := kernelFS.ReadFile("kernels/prelude.cuh")
	if err != nil {
		return "", fmt.Errorf("cuda: embedded prelude: %w", err)
	}
	return string(b), nil
}

// KernelSources returns every embedded kernel source, ready for NVRTC.
func KernelSources() ([]KernelSource, error) {
	prelude, err := Prelude()
	if err != nil {
		return nil, err
	}
	entries, err := kernelFS.ReadDir("kernels")
	if err != nil {
		return nil, err
	}
	var out []KernelSource
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".cu") {
			continue
		}
		b, err := kernelFS.ReadFile(path.Join("kernels", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, KernelSource{
			Name: strings.TrimSuffix(e.Name(), ".cu"),
			Src:  prelude + "\n#line 1 \"" + e.Name() + "\"\n" + string(b),
			Raw:  string(b),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Kernels parses the source's kernel prototypes.
func (s KernelSource) Kernels() ([]kernelproto.Kernel, error) {
	ks, err := kernelproto.Parse(s.Raw)
	if err != nil {
		return nil, fmt.Errorf("cuda: kernels/%s.cu: %w", s.Name, err)
	}
	return ks, nil
}

// loadKernels compiles (or reads from the cubin cache) every embedded source
// for the device's architecture, loads the modules and fills kt. Every
// kernel the table names must be found, and every kernel found gets its
// prototype for Launch's argument check.
func loadKernels(dv *Device, nv *NVRTC, kt *kernelTable) ([]*Module, error) {
	srcs, err := KernelSources()
	if err != nil {
		return nil, err
	}
	slots := map[string]**Function{}
	for _, s := range kt.slots() {
		slots[s.name] = s.fn
	}
	var mods []*Module
	for _, s := range srcs {
		ks, err := s.Kernels()
		if err != nil {
			return nil, err
		}
		cubin, err := nv.CompileCached(s.Name, s.Src, dv.Arch())
		if err != nil {
			return nil, err
		}
		m, err := dv.LoadModule(cubin)
		if err != nil {
			return nil, fmt.Errorf("cuda: loading kernels %s: %w", s.Name, err)
		}
		mods = append(mods, m)
		for i := range ks {
			f, err := m.Function(ks[i].Name)
			if err != nil {
				return nil, err
			}
			f.proto = &ks[i]
			slot, ok := slots[ks[i].Name]
			if !ok {
				return nil, fmt.Errorf("cuda: kernel %s has no generated wrapper: run go generate ./cuda", ks[i].Name)
			}
			*slot = f
			delete(slots, ks[i].Name)
		}
	}
	for name := range slots {
		return nil, fmt.Errorf("cuda: kernel %s has a wrapper but no source: run go generate ./cuda", name)
	}
	return mods, nil
}
