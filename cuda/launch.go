package cuda

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"github.com/litcache/litcache/cuda/internal/kernelproto"
)

//go:generate go run ./internal/kernelgen -dir kernels -o kernels_gen.go

// Dim3 is a grid or block size.
type Dim3 struct{ X, Y, Z uint32 }

// launchConfig is where and how wide a kernel runs.
type launchConfig struct {
	grid, block Dim3
	shmem       uint32 // dynamic shared memory bytes
	stream      uintptr
}

// maxKernelArgs bounds a kernel's parameter count (the longest has 14).
const maxKernelArgs = 24

// kernelArgs is the parameter block cuLaunchKernel reads: an array of
// pointers, each to one argument's value. Values sit in 8-byte slots (the
// driver copies each parameter's own size from the start of its slot, and
// x86-64 and arm64 are little-endian). The block is heap-allocated so that
// the pointers stay valid for the call whatever the goroutine's stack does.
type kernelArgs struct {
	vals  [maxKernelArgs]uint64
	ptrs  [maxKernelArgs]unsafe.Pointer
	kinds [maxKernelArgs]kernelproto.Kind
	n     int
}

func newKernelArgs(n int) *kernelArgs {
	if n > maxKernelArgs {
		panic(fmt.Sprintf("cuda: kernel with %d parameters (at most %d)", n, maxKernelArgs))
	}
	return &kernelArgs{}
}

func (a *kernelArgs) put(k kernelproto.Kind, v uint64) {
	a.vals[a.n] = v
	a.kinds[a.n] = k
	a.ptrs[a.n] = unsafe.Pointer(&a.vals[a.n])
	a.n++
}

func (a *kernelArgs) ptr(p uintptr) { a.put(kernelproto.Ptr, uint64(p)) }
func (a *kernelArgs) i32(v int32)   { a.put(kernelproto.I32, uint64(uint32(v))) }
func (a *kernelArgs) u32(v uint32)  { a.put(kernelproto.U32, uint64(v)) }
func (a *kernelArgs) i64(v int64)   { a.put(kernelproto.I64, uint64(v)) }
func (a *kernelArgs) u64(v uint64)  { a.put(kernelproto.U64, v) }
func (a *kernelArgs) f32(v float32) { a.put(kernelproto.F32, uint64(math.Float32bits(v))) }
func (a *kernelArgs) f64(v float64) { a.put(kernelproto.F64, math.Float64bits(v)) }

// Function is a kernel in a loaded module.
type Function struct {
	dv   *Device
	fn   uintptr
	Name string
	// proto is the kernel's prototype from the embedded sources, when known:
	// Launch checks its untyped arguments against it.
	proto *kernelproto.Kernel
}

// launchArgs queues the kernel; with SyncEachLaunch it waits for it, so that a
// fault is reported under the kernel's name.
func (f *Function) launchArgs(l launchConfig, a *kernelArgs) error {
	if f == nil {
		return fmt.Errorf("cuda: launch of a kernel that was not loaded")
	}
	if l.grid.X == 0 || l.grid.Y == 0 && l.grid.Z != 0 {
		return nil // nothing to do (an op over zero elements)
	}
	if err := f.dv.bind(); err != nil {
		return err
	}
	defer f.dv.unbind()
	var pp unsafe.Pointer
	if a.n > 0 {
		pp = unsafe.Pointer(&a.ptrs[0])
	}
	g, b := l.grid, l.block
	r := f.dv.drv.cuLaunchKernel(f.fn, g.X, max(g.Y, 1), max(g.Z, 1), b.X, max(b.Y, 1), max(b.Z, 1), l.shmem, l.stream, pp, nil)
	runtime.KeepAlive(a)
	if err := f.dv.drv.check(r, "cuLaunchKernel "+f.Name); err != nil {
		return err
	}
	if f.dv.syncLaunches() {
		return f.dv.drv.check(f.dv.drv.cuStreamSynchronize(l.stream), "kernel "+f.Name+" (synchronised after its launch: LITCACHE_CUDA_SYNC=1)")
	}
	return nil
}

// Launch queues the kernel on stream with untyped arguments: uintptr or
// Buffer (a device pointer), int32 or int (C int), uint32, int64 (C long),
// uint64, float32, float64. When the kernel's prototype is known (every
// embedded kernel's is) the count and each argument's kind are checked
// against it, so a wrong argument is an error instead of a GPU reading
// garbage. The backend itself uses the generated typed wrappers.
func (f *Function) Launch(grid, block Dim3, shmem uint32, stream uintptr, args ...any) error {
	a, err := f.marshal(args)
	if err != nil {
		return err
	}
	return f.launchArgs(launchConfig{grid: grid, block: block, shmem: shmem, stream: stream}, a)
}

func (f *Function) marshal(args []any) (*kernelArgs, error) {
	if f.proto != nil && len(args) != len(f.proto.Params) {
		return nil, fmt.Errorf("cuda: launch %s: %d arguments for %s", f.Name, len(args), f.proto.Signature())
	}
	a := newKernelArgs(len(args))
	for i, v := range args {
		switch v := v.(type) {
		case uintptr:
			a.ptr(v)
		case Buffer:
			a.ptr(v.Ptr)
		case int32:
			a.i32(v)
		case int:
			if v < math.MinInt32 || v > math.MaxInt32 {
				return nil, fmt.Errorf("cuda: launch %s: argument %d (%d) overflows a C int", f.Name, i, v)
			}
			a.i32(int32(v))
		case uint32:
			a.u32(v)
		case int64:
			a.i64(v)
		case uint64:
			a.u64(v)
		case float32:
			a.f32(v)
		case float64:
			a.f64(v)
		default:
			return nil, fmt.Errorf("cuda: launch %s: argument %d has unsupported type %T", f.Name, i, v)
		}
		if f.proto != nil {
			if want := f.proto.Params[i]; a.kinds[i] != want.Kind {
				return nil, fmt.Errorf("cuda: launch %s: argument %d is %T, the kernel takes %s %s (%s)",
					f.Name, i, v, want.CType, want.Name, want.Kind.GoType())
			}
		}
	}
	return a, nil
}

// kernelSlot pairs a kernel name with the kernelTable field it fills.
type kernelSlot struct {
	name string
	fn   **Function
}
