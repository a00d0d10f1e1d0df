package cuda

import (
	"embed"
	"fmt"
	"path"
	"sort"
	"strings"
)

//go:embed kernels/*.cu kernels/*.cuh
var kernelFS embed.FS

// KernelSource is one embedded .cu file, with the prelude prepended.
type KernelSource struct {
	Name string // file name without .cu, e.g. "rows"
	Src  string
}

// KernelSources returns every embedded kernel source, ready for NVRTC.
func KernelSources() ([]KernelSource, error) {
	prelude, err := kernelFS.ReadFile("kernels/prelude.cuh")
	if err != nil {
		return nil, fmt.Errorf("cuda: embedded prelude: %w", err)
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
			Src:  string(prelude) + "\n#line 1 \"" + e.Name() + "\"\n" + string(b),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// KernelNames lists the extern "C" kernels a source defines, including the
// _f32 and _bf16 pair of each INSTANTIATE(name, ...) line.
func KernelNames(src string) []string {
	var names []string
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "INSTANTIATE("); ok {
			if i := strings.IndexByte(rest, ','); i > 0 {
				names = append(names, rest[:i]+"_f32", rest[:i]+"_bf16")
			}
			continue
		}
		if !strings.HasPrefix(line, `extern "C" __global__ void `) {
			continue
		}
		rest := strings.TrimPrefix(line, `extern "C" __global__ void `)
		if i := strings.IndexByte(rest, '('); i > 0 {
			names = append(names, rest[:i])
		}
	}
	return names
}

// Kernels is the loaded set of litcache kernels on one device.
type Kernels struct {
	fns map[string]*Function
}

// LoadKernels compiles (or reads from the cubin cache) every embedded source
// for the device's architecture and looks up each kernel.
func LoadKernels(dv *Device, nv *NVRTC) (*Kernels, error) {
	srcs, err := KernelSources()
	if err != nil {
		return nil, err
	}
	k := &Kernels{fns: map[string]*Function{}}
	for _, s := range srcs {
		cubin, err := nv.CompileCached(s.Name, s.Src, dv.Arch())
		if err != nil {
			return nil, err
		}
		mod, err := dv.LoadModule(cubin)
		if err != nil {
			return nil, fmt.Errorf("cuda: loading %s: %w", s.Name, err)
		}
		for _, name := range KernelNames(s.Src) {
			f, err := mod.Function(name)
			if err != nil {
				return nil, err
			}
			k.fns[name] = f
		}
	}
	return k, nil
}

// Get returns a kernel by name.
func (k *Kernels) Get(name string) (*Function, error) {
	f, ok := k.fns[name]
	if !ok {
		return nil, fmt.Errorf("cuda: no kernel %q", name)
	}
	return f, nil
}
