package cuda

import (
	"errors"
	"testing"
)

// TestKernelsCompile compiles every embedded kernel with NVRTC for the
// architectures litcache targets. NVRTC needs no GPU: Debian's libnvrtc11.2
// (non-free) is enough, and .ci/run installs it. Without NVRTC the test is
// skipped with a message (a fresh clone with only Go installed).
func TestKernelsCompile(t *testing.T) {
	nv, err := LoadNVRTC()
	if errors.Is(err, ErrNoNVRTC) {
		t.Skipf("NVRTC not installed (apt install libnvrtc11.2 from Debian non-free, or a CUDA toolkit): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := KernelSources()
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) == 0 {
		t.Fatal("no embedded kernels")
	}
	archs := []string{"sm_80", "sm_90"}
	if nv.Major < 11 || (nv.Major == 11 && nv.Minor < 8) {
		archs = []string{"sm_80"} // sm_90 needs NVRTC 11.8
	}
	for _, s := range srcs {
		for _, arch := range archs {
			t.Run(s.Name+"/"+arch, func(t *testing.T) {
				cubin, err := nv.Compile(s.Name, s.Src, arch)
				if err != nil {
					t.Fatal(err)
				}
				if len(cubin) < 4 || string(cubin[1:4]) != "ELF" {
					t.Fatalf("cubin for %s is not an ELF image (%d bytes)", arch, len(cubin))
				}
				if ks, err := s.Kernels(); err != nil || len(ks) == 0 {
					t.Fatalf("%s defines no extern \"C\" kernels (%v)", s.Name, err)
				}
			})
		}
	}
	t.Logf("NVRTC %s from %s", nv.Version(), nv.Lib.Path)
}

// TestCompileErrorHasLog checks that a broken source reports NVRTC's log.
func TestCompileErrorHasLog(t *testing.T) {
	nv, err := LoadNVRTC()
	if err != nil {
		t.Skipf("NVRTC not installed: %v", err)
	}
	_, err = nv.Compile("broken", `extern "C" __global__ void f() { undefined_symbol(); }`, "sm_80")
	var ce *CompileError
	if !errors.As(err, &ce) || ce.Log == "" {
		t.Fatalf("want a CompileError with a log, got %v", err)
	}
}

// TestNoGPUIsAClearError: on a machine without a driver or GPU, Open fails
// with ErrNoDriver or ErrNoDevice and never panics or exits.
func TestNoGPUIsAClearError(t *testing.T) {
	dv, err := Open(0)
	if err == nil {
		t.Logf("GPU present: %s (%s)", dv.Name, dv.Arch())
		dv.Close()
		return
	}
	if !errors.Is(err, ErrNoDriver) && !errors.Is(err, ErrNoDevice) {
		t.Fatalf("want ErrNoDriver or ErrNoDevice, got %v", err)
	}
	t.Logf("no GPU, as reported: %v", err)
}
