package emu_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ebitengine/purego"
	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/cuda/emu"
	"github.com/litcache/litcache/internal/backend"
)

// TestContextFromAnyGoroutine: the driver keeps the current context per OS
// thread. The emulator enforces that as the real driver does (the control
// below: a raw call on a fresh thread fails with CUDA_ERROR_INVALID_CONTEXT),
// and every Backend entry point still works from goroutines pinned to
// threads the context was never made current on, eight at once. Broken on
// purpose by making the context current only once, in Open (the old
// Device.Bind): the parity tests then panic on their first op with
// CUDA_ERROR_INVALID_CONTEXT, as the issue predicted for t.Run.
func TestContextFromAnyGoroutine(t *testing.T) {
	g := open(t, cuda.Options{Precision: cuda.F32})

	lib, err := purego.Dlopen(os.Getenv("LITCACHE_LIBCUDA"), purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		t.Fatal(err)
	}
	var memAlloc func(p *uintptr, n uint64) int32
	var setCurrent func(ctx uintptr) int32
	purego.RegisterLibFunc(&memAlloc, lib, "cuMemAlloc_v2")
	purego.RegisterLibFunc(&setCurrent, lib, "cuCtxSetCurrent")
	// noContext pins the goroutine to its thread and clears the thread's
	// current context (an earlier op may have left it current there).
	noContext := func() {
		runtime.LockOSThread()
		if r := setCurrent(0); r != 0 {
			panic(r)
		}
	}
	rc := make(chan int32)
	go func() {
		noContext()
		var p uintptr
		rc <- memAlloc(&p, 16)
	}()
	if r := <-rc; r != 201 {
		t.Fatalf("control: cuMemAlloc on a thread without the context returned %d, want 201 (the emulator must enforce affinity)", r)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			noContext()
			defer runtime.UnlockOSThread()
			errs <- catch(func() {
				x := g.FromFloat32([]float32{1, 2, 3, float32(i)}, 4)
				defer g.Free(x)
				g.Scale(x, 2)
				y := g.Zeros(4)
				defer g.Free(y)
				g.Activation(y, x, backend.ActNone)
				got := g.ToFloat32(y, nil)
				if got[0] != 2 || got[3] != float32(2*i) {
					panic(fmt.Errorf("goroutine %d: got %v", i, got))
				}
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// faultChild runs when the test binary is re-executed by TestDeviceErrorNamesOp:
// the emulator's fault is sticky, so it must not poison this process.
func faultChild() error {
	g, err := cuda.NewBackend(cuda.Options{Precision: cuda.BF16})
	if err != nil {
		return err
	}
	return catch(func() {
		x := g.FromFloat32(make([]float32, 64), 2, 32)
		gamma, beta := g.FromFloat32(make([]float32, 32), 32), g.FromFloat32(make([]float32, 32), 32)
		out := g.Zeros(2, 32)
		g.LayerNorm(out, x, gamma, beta, 1e-5, nil, nil)
		g.ToFloat32(out, nil)
	})
}

func TestFaultChild(t *testing.T) {
	if os.Getenv("EMU_FAULT_CHILD") != "1" {
		t.Skip("run by TestDeviceErrorNamesOp")
	}
	if err := emu.Err(); err != nil {
		t.Fatal(err)
	}
	err := faultChild()
	var oe *cuda.OpError
	var ce *cuda.Error
	fmt.Printf("child error: %v\nis OpError: %v, is cuda.Error: %v\n", err, errors.As(err, &oe), errors.As(err, &ce))
}

// TestDeviceErrorNamesOp: a kernel fault reaches the caller as an error
// value (Catch) naming the op and carrying the driver's name and text for the
// code. Without LITCACHE_CUDA_SYNC it surfaces at the next synchronisation
// with a hint; with it, under the faulting kernel's own name.
func TestDeviceErrorNamesOp(t *testing.T) {
	if err := emu.Err(); err != nil {
		t.Skip(err)
	}
	for _, c := range []struct {
		sync string
		want []string
	}{
		{"", []string{"cuda: ToFloat32: cuStreamSynchronize: CUDA_ERROR_ILLEGAL_ADDRESS (700): an illegal memory access was encountered",
			"LITCACHE_CUDA_SYNC=1 to name it", "is OpError: true, is cuda.Error: true"}},
		{"1", []string{"cuda: LayerNorm: kernel layernorm_bf16 (synchronised after its launch: LITCACHE_CUDA_SYNC=1): CUDA_ERROR_ILLEGAL_ADDRESS (700)",
			"is OpError: true, is cuda.Error: true"}},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestFaultChild$", "-test.v")
		cmd.Env = append(os.Environ(), "EMU_FAULT_CHILD=1", "LITCACHE_EMU_FAULT=layernorm_bf16", "LITCACHE_CUDA_SYNC="+c.sync)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("LITCACHE_CUDA_SYNC=%q: output lacks %q:\n%s", c.sync, w, out)
			}
		}
	}
}

// catch runs f and returns the device error an op raised inside it, as a
// stage's recover does (cuda.Recover).
func catch(f func()) (err error) {
	defer cuda.Recover(&err)
	f()
	return nil
}
