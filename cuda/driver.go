package cuda

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/litcache/litcache/internal/native"
)

// Driver API attribute numbers (cuda.h CUdevice_attribute).
const (
	attrMultiprocessorCount    = 16
	attrComputeCapabilityMajor = 75
	attrComputeCapabilityMinor = 76
)

// Driver holds the CUDA driver API functions bound from libcuda.so.1.
// The _v2 entry points are the ones cuda.h maps the plain names to.
type Driver struct {
	Lib *native.Library

	cuInit                    func(flags uint32) Result
	cuDriverGetVersion        func(v *int32) Result
	cuDeviceGetCount          func(n *int32) Result
	cuDeviceGet               func(dev *int32, ordinal int32) Result
	cuDeviceGetName           func(name *byte, n int32, dev int32) Result
	cuDeviceGetAttribute      func(v *int32, attr int32, dev int32) Result
	cuDeviceTotalMem          func(bytes *uint64, dev int32) Result
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) Result
	cuDevicePrimaryCtxRelease func(dev int32) Result
	cuCtxSetCurrent           func(ctx uintptr) Result
	cuMemGetInfo              func(free, total *uint64) Result
	cuMemAlloc                func(ptr *uintptr, bytes uint64) Result
	cuMemFree                 func(ptr uintptr) Result
	cuMemAllocHost            func(ptr *unsafe.Pointer, bytes uint64) Result
	cuMemFreeHost             func(ptr unsafe.Pointer) Result
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uintptr, bytes uint64) Result
	cuMemcpyHtoDAsync         func(dst uintptr, src unsafe.Pointer, bytes uint64, stream uintptr) Result
	cuMemcpyDtoHAsync         func(dst unsafe.Pointer, src uintptr, bytes uint64, stream uintptr) Result
	cuMemcpyDtoDAsync         func(dst, src uintptr, bytes uint64, stream uintptr) Result
	cuMemsetD8Async           func(dst uintptr, v uint8, n uint64, stream uintptr) Result
	cuStreamCreate            func(s *uintptr, flags uint32) Result
	cuStreamDestroy           func(s uintptr) Result
	cuStreamSynchronize       func(s uintptr) Result
	cuStreamWaitEvent         func(s, e uintptr, flags uint32) Result
	cuEventCreate             func(e *uintptr, flags uint32) Result
	cuEventDestroy            func(e uintptr) Result
	cuEventRecord             func(e, s uintptr) Result
	cuEventSynchronize        func(e uintptr) Result
	cuModuleLoadData          func(mod *uintptr, image unsafe.Pointer) Result
	cuModuleGetFunction       func(f *uintptr, mod uintptr, name *byte) Result
	cuLaunchKernel            func(f uintptr, gx, gy, gz, bx, by, bz, shmem uint32, stream uintptr, params unsafe.Pointer, extra unsafe.Pointer) Result
	cuGetErrorName            func(code Result, s **byte) Result
	cuGetErrorString          func(code Result, s **byte) Result

	// CUDA graphs (stream capture), bound when the driver has them; graphErr
	// says why not otherwise.
	cuStreamBeginCapture        func(s uintptr, mode uint32) Result
	cuStreamEndCapture          func(s uintptr, graph *uintptr) Result
	cuGraphInstantiateWithFlags func(exec *uintptr, graph uintptr, flags uint64) Result
	cuGraphLaunch               func(exec, s uintptr) Result
	cuGraphExecDestroy          func(exec uintptr) Result
	cuGraphDestroy              func(graph uintptr) Result
	graphErr                    error
}

var driverSpec = native.Spec{Name: "cuda", Sonames: []string{"libcuda.so.1", "libcuda.so"}, Env: []string{"LITCACHE_LIBCUDA"}}

var (
	driverOnce sync.Once
	driver     *Driver
	driverErr  error
)

// LoadDriver loads libcuda.so.1 and calls cuInit once. Without a driver it
// returns an error wrapping ErrNoDriver; with a driver but no GPU, ErrNoDevice.
func LoadDriver() (*Driver, error) {
	driverOnce.Do(func() { driver, driverErr = loadDriver() })
	return driver, driverErr
}

func loadDriver() (*Driver, error) {
	lib, err := native.Open(driverSpec)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoDriver, err)
	}
	d := &Driver{Lib: lib}
	binds := []struct {
		fn   any
		name string
	}{
		{&d.cuInit, "cuInit"},
		{&d.cuDriverGetVersion, "cuDriverGetVersion"},
		{&d.cuDeviceGetCount, "cuDeviceGetCount"},
		{&d.cuDeviceGet, "cuDeviceGet"},
		{&d.cuDeviceGetName, "cuDeviceGetName"},
		{&d.cuDeviceGetAttribute, "cuDeviceGetAttribute"},
		{&d.cuDeviceTotalMem, "cuDeviceTotalMem_v2"},
		{&d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
		{&d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"},
		{&d.cuCtxSetCurrent, "cuCtxSetCurrent"},
		{&d.cuMemGetInfo, "cuMemGetInfo_v2"},
		{&d.cuMemAlloc, "cuMemAlloc_v2"},
		{&d.cuMemFree, "cuMemFree_v2"},
		{&d.cuMemAllocHost, "cuMemAllocHost_v2"},
		{&d.cuMemFreeHost, "cuMemFreeHost"},
		{&d.cuMemcpyDtoH, "cuMemcpyDtoH_v2"},
		{&d.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"},
		{&d.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"},
		{&d.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"},
		{&d.cuMemsetD8Async, "cuMemsetD8Async"},
		{&d.cuStreamCreate, "cuStreamCreate"},
		{&d.cuStreamDestroy, "cuStreamDestroy_v2"},
		{&d.cuStreamSynchronize, "cuStreamSynchronize"},
		{&d.cuStreamWaitEvent, "cuStreamWaitEvent"},
		{&d.cuEventCreate, "cuEventCreate"},
		{&d.cuEventDestroy, "cuEventDestroy_v2"},
		{&d.cuEventRecord, "cuEventRecord"},
		{&d.cuEventSynchronize, "cuEventSynchronize"},
		{&d.cuModuleLoadData, "cuModuleLoadData"},
		{&d.cuModuleGetFunction, "cuModuleGetFunction"},
		{&d.cuLaunchKernel, "cuLaunchKernel"},
		{&d.cuGetErrorName, "cuGetErrorName"},
		{&d.cuGetErrorString, "cuGetErrorString"},
	}
	for _, b := range binds {
		if err := lib.Bind(b.fn, b.name); err != nil {
			return nil, fmt.Errorf("cuda: %s is too old or not a CUDA driver: %w", lib.Path, err)
		}
	}
	for _, b := range []struct {
		fn   any
		name string
	}{
		{&d.cuStreamBeginCapture, "cuStreamBeginCapture_v2"},
		{&d.cuStreamEndCapture, "cuStreamEndCapture"},
		{&d.cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags"},
		{&d.cuGraphLaunch, "cuGraphLaunch"},
		{&d.cuGraphExecDestroy, "cuGraphExecDestroy"},
		{&d.cuGraphDestroy, "cuGraphDestroy"},
	} {
		if err := lib.Bind(b.fn, b.name); err != nil {
			d.graphErr = fmt.Errorf("cuda: %s has no CUDA graphs (CUDA 11.4 or later): %w", lib.Path, err)
			break
		}
	}
	if err := d.check(d.cuInit(0), "cuInit"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDevice, err)
	}
	return d, nil
}

// check turns a CUresult into an *Error naming the call.
func (d *Driver) check(r Result, call string) error {
	if r == 0 {
		return nil
	}
	e := &Error{Call: call, Code: r, Name: "CUDA_ERROR", Text: "unknown"}
	var s *byte
	if d.cuGetErrorName(r, &s) == 0 && s != nil {
		e.Name = goString(s)
	}
	if d.cuGetErrorString(r, &s) == 0 && s != nil {
		e.Text = goString(s)
	}
	return e
}

// Version is the driver's CUDA version, e.g. 13000 for 13.0.
func (d *Driver) Version() (int, error) {
	var v int32
	if err := d.check(d.cuDriverGetVersion(&v), "cuDriverGetVersion"); err != nil {
		return 0, err
	}
	return int(v), nil
}

// DeviceCount is the number of visible GPUs (after CUDA_VISIBLE_DEVICES).
func (d *Driver) DeviceCount() (int, error) {
	var n int32
	if err := d.check(d.cuDeviceGetCount(&n), "cuDeviceGetCount"); err != nil {
		return 0, err
	}
	return int(n), nil
}

// goString copies a NUL-terminated C string.
func goString(p *byte) string {
	if p == nil {
		return ""
	}
	var n int
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// cString returns a NUL-terminated copy of s.
func cString(s string) *byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return &b[0]
}
