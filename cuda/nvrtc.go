package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/litcache/litcache/internal/native"
)

// NVRTC is the run-time CUDA C++ compiler, bound from libnvrtc.
type NVRTC struct {
	Lib          *native.Library
	Major, Minor int

	nvrtcVersion           func(major, minor *int32) int32
	nvrtcCreateProgram     func(prog *uintptr, src, name *byte, numHeaders int32, headers, includeNames unsafe.Pointer) int32
	nvrtcCompileProgram    func(prog uintptr, numOptions int32, options unsafe.Pointer) int32
	nvrtcGetProgramLogSize func(prog uintptr, n *uint64) int32
	nvrtcGetProgramLog     func(prog uintptr, log *byte) int32
	nvrtcGetCUBINSize      func(prog uintptr, n *uint64) int32
	nvrtcGetCUBIN          func(prog uintptr, out *byte) int32
	nvrtcDestroyProgram    func(prog *uintptr) int32
	nvrtcGetErrorString    func(r int32) *byte
	nvrtcGetPTXSize        func(prog uintptr, n *uint64) int32
	nvrtcGetPTX            func(prog uintptr, out *byte) int32

	// archs are the sm_XX numbers this NVRTC compiles for (nil: unknown, try any).
	archs []int
	// lastLog is the log of the last compilation (tests read ptxas's resource report from it).
	lastLog string
}

var nvrtcSpec = native.Spec{
	Name:    "nvrtc",
	Sonames: []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"},
	Env:     []string{"LITCACHE_LIBNVRTC"},
}

var (
	nvrtcOnce sync.Once
	nvrtcLib  *NVRTC
	nvrtcErr  error
)

// LoadNVRTC loads NVRTC of CUDA 13, 12 or 11. It needs no GPU.
func LoadNVRTC() (*NVRTC, error) {
	nvrtcOnce.Do(func() { nvrtcLib, nvrtcErr = loadNVRTC() })
	return nvrtcLib, nvrtcErr
}

func loadNVRTC() (*NVRTC, error) {
	lib, err := native.Open(nvrtcSpec)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoNVRTC, err)
	}
	n := &NVRTC{Lib: lib}
	for _, b := range []struct {
		fn   any
		name string
	}{
		{&n.nvrtcVersion, "nvrtcVersion"},
		{&n.nvrtcCreateProgram, "nvrtcCreateProgram"},
		{&n.nvrtcCompileProgram, "nvrtcCompileProgram"},
		{&n.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize"},
		{&n.nvrtcGetProgramLog, "nvrtcGetProgramLog"},
		{&n.nvrtcGetCUBINSize, "nvrtcGetCUBINSize"},
		{&n.nvrtcGetCUBIN, "nvrtcGetCUBIN"},
		{&n.nvrtcDestroyProgram, "nvrtcDestroyProgram"},
		{&n.nvrtcGetErrorString, "nvrtcGetErrorString"},
		{&n.nvrtcGetPTXSize, "nvrtcGetPTXSize"},
		{&n.nvrtcGetPTX, "nvrtcGetPTX"},
	} {
		if err := lib.Bind(b.fn, b.name); err != nil {
			return nil, fmt.Errorf("cuda: %s: %w", lib.Path, err)
		}
	}
	// nvrtcGetSupportedArchs exists from CUDA 11.2 on.
	if lib.Has("nvrtcGetNumSupportedArchs") && lib.Has("nvrtcGetSupportedArchs") {
		var num func(n *int32) int32
		var list func(a *int32) int32
		if lib.Bind(&num, "nvrtcGetNumSupportedArchs") == nil && lib.Bind(&list, "nvrtcGetSupportedArchs") == nil {
			var k int32
			if num(&k) == 0 && k > 0 {
				a := make([]int32, k)
				if list(&a[0]) == 0 {
					for _, v := range a {
						n.archs = append(n.archs, int(v))
					}
				}
			}
		}
	}
	var maj, min int32
	if r := n.nvrtcVersion(&maj, &min); r != 0 {
		return nil, fmt.Errorf("cuda: nvrtcVersion: %s", goString(n.nvrtcGetErrorString(r)))
	}
	n.Major, n.Minor = int(maj), int(min)
	return n, nil
}

// Version is "MAJOR.MINOR".
func (n *NVRTC) Version() string { return fmt.Sprintf("%d.%d", n.Major, n.Minor) }

// CompileError is a failed compilation with NVRTC's log.
type CompileError struct {
	Name, Arch string
	Log        string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("cuda: nvrtc: compiling %s for %s failed:\n%s", e.Name, e.Arch, strings.TrimSpace(e.Log))
}

// Target is what Compile builds for a device architecture: the device's own
// cubin when this NVRTC knows the architecture, else PTX for the newest
// architecture it knows below it, which the driver compiles at load (an
// older toolkit on a newer GPU still runs, without the newest instructions).
func (n *NVRTC) Target(arch string) (target string, ptx bool) {
	var want int
	if _, err := fmt.Sscanf(arch, "sm_%d", &want); err != nil || len(n.archs) == 0 {
		return arch, false
	}
	best := 0
	for _, a := range n.archs {
		if a == want {
			return arch, false
		}
		if a < want && a > best {
			best = a
		}
	}
	if best == 0 {
		return arch, false // nothing older either: let NVRTC say what it thinks
	}
	return fmt.Sprintf("compute_%d", best), true
}

// Compile compiles CUDA C++ source for a device of architecture arch (e.g.
// "sm_90"): a cubin, or PTX where Target says so.
func (n *NVRTC) Compile(name, src, arch string, extraOpts ...string) ([]byte, error) {
	target, ptx := n.Target(arch)
	if ptx {
		return n.compile(name, src, target, true, extraOpts)
	}
	return n.compile(name, src, arch, false, extraOpts)
}

func (n *NVRTC) compile(name, src, arch string, ptx bool, extraOpts []string) ([]byte, error) {
	var prog uintptr
	if r := n.nvrtcCreateProgram(&prog, cString(src), cString(name), 0, nil, nil); r != 0 {
		return nil, fmt.Errorf("cuda: nvrtcCreateProgram %s: %s", name, goString(n.nvrtcGetErrorString(r)))
	}
	defer n.nvrtcDestroyProgram(&prog)
	opts := append([]string{"--gpu-architecture=" + arch, "--std=c++14", "-default-device"}, extraOpts...)
	cs := make([]*byte, len(opts))
	for i, o := range opts {
		cs[i] = cString(o)
	}
	r := n.nvrtcCompileProgram(prog, int32(len(cs)), unsafe.Pointer(&cs[0]))
	var sz uint64
	n.nvrtcGetProgramLogSize(prog, &sz)
	log := make([]byte, sz+1)
	n.nvrtcGetProgramLog(prog, &log[0])
	n.lastLog = strings.TrimRight(string(log), "\x00")
	if r != 0 {
		return nil, &CompileError{Name: name, Arch: arch, Log: n.lastLog}
	}
	if ptx {
		if r := n.nvrtcGetPTXSize(prog, &sz); r != 0 || sz == 0 {
			return nil, fmt.Errorf("cuda: nvrtc: no PTX for %s (%s): %s", name, arch, goString(n.nvrtcGetErrorString(r)))
		}
		out := make([]byte, sz)
		if r := n.nvrtcGetPTX(prog, &out[0]); r != 0 {
			return nil, fmt.Errorf("cuda: nvrtcGetPTX %s: %s", name, goString(n.nvrtcGetErrorString(r)))
		}
		return out, nil
	}
	sz = 0
	if r := n.nvrtcGetCUBINSize(prog, &sz); r != 0 || sz == 0 {
		return nil, fmt.Errorf("cuda: nvrtc: no cubin for %s (%s): %s", name, arch, goString(n.nvrtcGetErrorString(r)))
	}
	out := make([]byte, sz)
	if r := n.nvrtcGetCUBIN(prog, &out[0]); r != 0 {
		return nil, fmt.Errorf("cuda: nvrtcGetCUBIN %s: %s", name, goString(n.nvrtcGetErrorString(r)))
	}
	return out, nil
}

// CubinCacheDir is where compiled kernels are kept: $LITCACHE_CUBIN_CACHE, else
// the user cache folder's litcache/cubin.
func CubinCacheDir() string {
	if d := os.Getenv("LITCACHE_CUBIN_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "litcache", "cubin")
}

// CompileCached returns the cubin for src on arch, from the disk cache when a
// build with the same source hash, architecture and NVRTC version is there.
func (n *NVRTC) CompileCached(name, src, arch string) ([]byte, error) {
	h := sha256.Sum256([]byte(src))
	target, _ := n.Target(arch)
	key := fmt.Sprintf("%s-%s-%s-nvrtc%d.%d.cubin", name, hex.EncodeToString(h[:8]), target, n.Major, n.Minor)
	dir := CubinCacheDir()
	path := filepath.Join(dir, key)
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return b, nil
	}
	cubin, err := n.Compile(name, src, arch)
	if err != nil {
		return nil, err
	}
	// The cache is an optimisation: a read-only home must not fail the run.
	if os.MkdirAll(dir, 0o755) == nil {
		tmp, err := os.CreateTemp(dir, key+".tmp*")
		if err == nil {
			_, werr := tmp.Write(cubin)
			cerr := tmp.Close()
			if werr == nil && cerr == nil {
				_ = os.Rename(tmp.Name(), path)
			} else {
				_ = os.Remove(tmp.Name())
			}
		}
	}
	return cubin, nil
}
