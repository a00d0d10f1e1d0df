package cuda

import (
	"fmt"
	"runtime"
	"strings"
	"unsafe"
)

// Device is one GPU with its primary context and a compute stream. A Device
// is used from one goroutine at a time (the context is made current on the
// calling OS thread by Bind).
type Device struct {
	drv      *Driver
	Ordinal  int
	dev      int32
	ctx      uintptr
	Stream   uintptr
	Name     string
	Major    int
	Minor    int
	SMs      int
	TotalMem uint64
}

// Open initialises GPU ordinal (0 = the first visible one) and retains its primary context.
func Open(ordinal int) (*Device, error) {
	d, err := LoadDriver()
	if err != nil {
		return nil, err
	}
	n, err := d.DeviceCount()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDevice, err)
	}
	if n == 0 {
		return nil, ErrNoDevice
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("cuda: device %d requested, %d visible", ordinal, n)
	}
	dv := &Device{drv: d, Ordinal: ordinal}
	if err := d.check(d.cuDeviceGet(&dv.dev, int32(ordinal)), "cuDeviceGet"); err != nil {
		return nil, err
	}
	name := make([]byte, 256)
	if err := d.check(d.cuDeviceGetName(&name[0], int32(len(name)), dv.dev), "cuDeviceGetName"); err != nil {
		return nil, err
	}
	dv.Name = strings.TrimRight(string(name), "\x00")
	attr := func(a int32) int {
		var v int32
		d.cuDeviceGetAttribute(&v, a, dv.dev)
		return int(v)
	}
	dv.Major, dv.Minor = attr(attrComputeCapabilityMajor), attr(attrComputeCapabilityMinor)
	dv.SMs = attr(attrMultiprocessorCount)
	if err := d.check(d.cuDeviceTotalMem(&dv.TotalMem, dv.dev), "cuDeviceTotalMem"); err != nil {
		return nil, err
	}
	if err := d.check(d.cuDevicePrimaryCtxRetain(&dv.ctx, dv.dev), "cuDevicePrimaryCtxRetain"); err != nil {
		return nil, err
	}
	if err := dv.Bind(); err != nil {
		return nil, err
	}
	if err := d.check(d.cuStreamCreate(&dv.Stream, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate"); err != nil {
		return nil, err
	}
	return dv, nil
}

// Bind locks the calling goroutine to its OS thread and makes the device's
// context current there. Call it at the start of a goroutine that uses the device.
func (dv *Device) Bind() error {
	runtime.LockOSThread()
	return dv.drv.check(dv.drv.cuCtxSetCurrent(dv.ctx), "cuCtxSetCurrent")
}

// Arch is the NVRTC architecture name of the device, e.g. "sm_90".
func (dv *Device) Arch() string { return fmt.Sprintf("sm_%d%d", dv.Major, dv.Minor) }

// MemInfo is the free and total device memory in bytes.
func (dv *Device) MemInfo() (free, total uint64, err error) {
	err = dv.drv.check(dv.drv.cuMemGetInfo(&free, &total), "cuMemGetInfo")
	return
}

// Close releases the stream and the primary context.
func (dv *Device) Close() error {
	if dv.Stream != 0 {
		dv.drv.cuStreamDestroy(dv.Stream)
		dv.Stream = 0
	}
	return dv.drv.check(dv.drv.cuDevicePrimaryCtxRelease(dv.dev), "cuDevicePrimaryCtxRelease")
}

// Sync waits for the device's stream.
func (dv *Device) Sync() error {
	return dv.drv.check(dv.drv.cuStreamSynchronize(dv.Stream), "cuStreamSynchronize")
}

// Buffer is device memory.
type Buffer struct {
	Ptr   uintptr
	Bytes uint64
}

// Alloc allocates device memory.
func (dv *Device) Alloc(bytes uint64) (Buffer, error) {
	var p uintptr
	if bytes == 0 {
		bytes = 1
	}
	if err := dv.drv.check(dv.drv.cuMemAlloc(&p, bytes), fmt.Sprintf("cuMemAlloc(%d bytes)", bytes)); err != nil {
		return Buffer{}, err
	}
	return Buffer{Ptr: p, Bytes: bytes}, nil
}

// Free releases device memory.
func (dv *Device) Free(b Buffer) error {
	if b.Ptr == 0 {
		return nil
	}
	return dv.drv.check(dv.drv.cuMemFree(b.Ptr), "cuMemFree")
}

// AllocHost allocates page-locked host memory, for async copies that overlap compute.
func (dv *Device) AllocHost(bytes int) ([]byte, error) {
	var p unsafe.Pointer
	if err := dv.drv.check(dv.drv.cuMemAllocHost(&p, uint64(bytes)), "cuMemAllocHost"); err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(p), bytes), nil
}

// FreeHost releases memory from AllocHost.
func (dv *Device) FreeHost(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return dv.drv.check(dv.drv.cuMemFreeHost(unsafe.Pointer(&b[0])), "cuMemFreeHost")
}

// CopyToDevice copies host bytes to dst on the device's stream and waits.
func (dv *Device) CopyToDevice(dst Buffer, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	if uint64(len(src)) > dst.Bytes {
		return fmt.Errorf("cuda: copy of %d bytes into a %d-byte buffer", len(src), dst.Bytes)
	}
	return dv.drv.check(dv.drv.cuMemcpyHtoD(dst.Ptr, unsafe.Pointer(&src[0]), uint64(len(src))), "cuMemcpyHtoD")
}

// CopyToDeviceAsync queues a host-to-device copy on stream (src must be pinned
// memory from AllocHost for the copy to overlap compute).
func (dv *Device) CopyToDeviceAsync(dst Buffer, src []byte, stream uintptr) error {
	if len(src) == 0 {
		return nil
	}
	return dv.drv.check(dv.drv.cuMemcpyHtoDAsync(dst.Ptr, unsafe.Pointer(&src[0]), uint64(len(src)), stream), "cuMemcpyHtoDAsync")
}

// CopyToHost copies device bytes into dst and waits.
func (dv *Device) CopyToHost(dst []byte, src Buffer) error {
	if len(dst) == 0 {
		return nil
	}
	if err := dv.Sync(); err != nil {
		return err
	}
	return dv.drv.check(dv.drv.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), src.Ptr, uint64(len(dst))), "cuMemcpyDtoH")
}

// Memset zeroes n bytes at dst on the device's stream.
func (dv *Device) Memset(dst uintptr, n uint64) error {
	return dv.drv.check(dv.drv.cuMemsetD8Async(dst, 0, n, dv.Stream), "cuMemsetD8Async")
}

// NewStream creates another non-blocking stream (e.g. for copies).
func (dv *Device) NewStream() (uintptr, error) {
	var s uintptr
	err := dv.drv.check(dv.drv.cuStreamCreate(&s, 1), "cuStreamCreate")
	return s, err
}

// Event is a CUDA event for timing and stream ordering.
type Event uintptr

// NewEvent creates an event.
func (dv *Device) NewEvent() (Event, error) {
	var e uintptr
	err := dv.drv.check(dv.drv.cuEventCreate(&e, 0), "cuEventCreate")
	return Event(e), err
}

// Record records e on stream.
func (dv *Device) Record(e Event, stream uintptr) error {
	return dv.drv.check(dv.drv.cuEventRecord(uintptr(e), stream), "cuEventRecord")
}

// WaitEvent makes stream wait for e.
func (dv *Device) WaitEvent(stream uintptr, e Event) error {
	return dv.drv.check(dv.drv.cuStreamWaitEvent(stream, uintptr(e), 0), "cuStreamWaitEvent")
}

// ElapsedMs is the time between two recorded events, after waiting for the second.
func (dv *Device) ElapsedMs(start, end Event) (float32, error) {
	if err := dv.drv.check(dv.drv.cuEventSynchronize(uintptr(end)), "cuEventSynchronize"); err != nil {
		return 0, err
	}
	var ms float32
	err := dv.drv.check(dv.drv.cuEventElapsedTime(&ms, uintptr(start), uintptr(end)), "cuEventElapsedTime")
	return ms, err
}

// Module is loaded GPU code.
type Module struct {
	dv  *Device
	mod uintptr
}

// LoadModule loads a cubin (or PTX) image.
func (dv *Device) LoadModule(image []byte) (*Module, error) {
	img := append([]byte(nil), image...)
	img = append(img, 0) // PTX must be NUL-terminated; harmless for a cubin
	var m uintptr
	if err := dv.drv.check(dv.drv.cuModuleLoadData(&m, unsafe.Pointer(&img[0])), "cuModuleLoadData"); err != nil {
		return nil, err
	}
	return &Module{dv: dv, mod: m}, nil
}

// Function is a kernel in a loaded module.
type Function struct {
	dv   *Device
	fn   uintptr
	Name string
}

// Function looks a kernel up by its (extern "C") name.
func (m *Module) Function(name string) (*Function, error) {
	var f uintptr
	if err := m.dv.drv.check(m.dv.drv.cuModuleGetFunction(&f, m.mod, cString(name)), "cuModuleGetFunction "+name); err != nil {
		return nil, err
	}
	return &Function{dv: m.dv, fn: f, Name: name}, nil
}

// Dim3 is a grid or block size.
type Dim3 struct{ X, Y, Z uint32 }

// Launch queues the kernel on stream with the given arguments. Each argument
// is a uintptr (device pointer), int32, uint32, float32 or int64 value.
func (f *Function) Launch(grid, block Dim3, shmem uint32, stream uintptr, args ...any) error {
	// cuLaunchKernel takes an array of pointers to the argument values; the
	// values live in one Go slice kept alive until the call returns (the
	// driver copies them during the call).
	vals := make([]uint64, len(args))
	ptrs := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case uintptr:
			vals[i] = uint64(v)
		case Buffer:
			vals[i] = uint64(v.Ptr)
		case int32:
			*(*int32)(unsafe.Pointer(&vals[i])) = v
		case int:
			*(*int32)(unsafe.Pointer(&vals[i])) = int32(v)
		case uint32:
			*(*uint32)(unsafe.Pointer(&vals[i])) = v
		case float32:
			*(*float32)(unsafe.Pointer(&vals[i])) = v
		case int64:
			vals[i] = uint64(v)
		default:
			return fmt.Errorf("cuda: launch %s: argument %d has unsupported type %T", f.Name, i, a)
		}
		ptrs[i] = unsafe.Pointer(&vals[i])
	}
	var pp unsafe.Pointer
	if len(ptrs) > 0 {
		pp = unsafe.Pointer(&ptrs[0])
	}
	r := f.dv.drv.cuLaunchKernel(f.fn, grid.X, max(grid.Y, 1), max(grid.Z, 1), block.X, max(block.Y, 1), max(block.Z, 1), shmem, stream, pp, nil)
	runtime.KeepAlive(vals)
	runtime.KeepAlive(ptrs)
	return f.dv.drv.check(r, "cuLaunchKernel "+f.Name)
}
