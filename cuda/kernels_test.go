package cuda

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
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

// TestCompileNewerArchAsPTX: for an architecture this NVRTC does not know
// (sm_200), Compile falls back to PTX for the newest one it does, which the
// driver compiles at load, instead of failing.
func TestCompileNewerArchAsPTX(t *testing.T) {
	nv, err := LoadNVRTC()
	if err != nil {
		t.Skipf("NVRTC not installed: %v", err)
	}
	if len(nv.archs) == 0 {
		t.Skip("this NVRTC does not list its architectures")
	}
	target, ptx := nv.Target("sm_200")
	if !ptx || !strings.HasPrefix(target, "compute_") {
		t.Fatalf("Target(sm_200) = %s, %v; want PTX for a compute_ target", target, ptx)
	}
	src, err := KernelSources()
	if err != nil {
		t.Fatal(err)
	}
	out, err := nv.Compile(src[0].Name, src[0].Src, "sm_200")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), ".target sm_"+strings.TrimPrefix(target, "compute_")) {
		t.Fatalf("output is not PTX for %s:\n%.200s", target, out)
	}
	if tg, ptx := nv.Target("sm_80"); ptx || tg != "sm_80" {
		t.Errorf("Target(sm_80) = %s, %v; want the cubin", tg, ptx)
	}
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

// TestFlashKernelsNoSpills reads ptxas's resource report for the fused
// attention kernels: no stack frame and no spills (their fragments must stay
// in registers; a spill to local memory would cost a multiple of the
// kernel's time), and the static shared memory under the 48 KiB a block
// gets without opting in. Measured with NVRTC 11.8 for sm_90: 75–164
// registers, 9–39 KiB shared, 0 bytes spilled.
func TestFlashKernelsNoSpills(t *testing.T) {
	nv, err := LoadNVRTC()
	if err != nil {
		t.Skipf("NVRTC not installed: %v", err)
	}
	srcs, err := KernelSources()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		if s.Name != "attention" {
			continue
		}
		if _, err := nv.compile(s.Name, s.Src, "sm_80", false, []string{"--ptxas-options=-v"}); err != nil {
			t.Fatal(err)
		}
		log := nv.lastLog
		entries := strings.Count(log, "Compiling entry function 'flash_attn_")
		if entries != 6 {
			t.Fatalf("ptxas report for %d flash kernels, want 6:\n%s", entries, log)
		}
		re := regexp.MustCompile(`(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads`)
		for _, m := range re.FindAllStringSubmatch(log, -1) {
			if m[1] != "0" || m[2] != "0" || m[3] != "0" {
				t.Errorf("a flash kernel uses local memory: %s", m[0])
			}
		}
		for _, m := range regexp.MustCompile(`Used (\d+) registers, (\d+) bytes smem`).FindAllStringSubmatch(log, -1) {
			if smem, _ := strconv.Atoi(m[2]); smem > 48<<10 {
				t.Errorf("%s: over 48 KiB of static shared memory", m[0])
			}
		}
		t.Log(log)
	}
}
