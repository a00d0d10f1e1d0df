package cuda

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Device is one GPU with its primary context and a compute stream.
//
// Context affinity: the driver keeps the current context per OS thread, and
// Go moves goroutines between threads at will. Every method therefore pins
// its goroutine to the thread it runs on (runtime.LockOSThread) and makes
// the context current there (cuCtxSetCurrent) for the length of the driver
// calls it makes, then unpins. That costs one driver call of a few tens of
// nanoseconds per method, against a kernel launch of microseconds, and keeps
// every entry point safe from any goroutine (t.Run's, errgroup's) without a
// dedicated device goroutine that every call would have to hop to and from.
// The methods are safe for concurrent use; ops from several goroutines on
// one stream run in the order they were queued.
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
	// SyncEachLaunch synchronises the stream after every kernel and GEMM, so
	// a kernel fault is reported under that kernel's name instead of at the
	// next synchronisation ($LITCACHE_CUDA_SYNC=1 sets it).
	SyncEachLaunch bool

	// allocated and peak count the bytes held from cuMemAlloc (the pool's
	// free lists included): MemStats.
	allocated, peak atomic.Int64
	// capturing is set while a stream capture records a CUDA graph: no
	// launch may synchronise then (SyncEachLaunch waits only outside it).
	capturing atomic.Bool
}

// MemStats is the device memory litcache holds: bytes allocated now (the
// pool's free buffers included) and the most held at once since Open or
// the last ResetPeak.
type MemStats struct {
	Allocated, Peak int64
}

// MemStats reports the bytes held from the driver's allocator.
func (dv *Device) MemStats() MemStats {
	return MemStats{Allocated: dv.allocated.Load(), Peak: dv.peak.Load()}
}

// ResetPeak starts a new high-water mark at the bytes held now.
func (dv *Device) ResetPeak() { dv.peak.Store(dv.allocated.Load()) }

// syncLaunches reports whether a launch should wait for its stream
// (SyncEachLaunch, except while a graph is being captured).
func (dv *Device) syncLaunches() bool { return dv.SyncEachLaunch && !dv.capturing.Load() }

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
	dv := &Device{drv: d, Ordinal: ordinal, SyncEachLaunch: os.Getenv("LITCACHE_CUDA_SYNC") == "1"}
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
	s, err := dv.NewStream()
	if err != nil {
		return nil, err
	}
	dv.Stream = s
	return dv, nil
}

// bind pins the calling goroutine to its OS thread and makes the device's
// context current there; unbind releases the pin. Calls nest.
func (dv *Device) bind() error {
	runtime.LockOSThread()
	if r := dv.drv.cuCtxSetCurrent(dv.ctx); r != 0 {
		runtime.UnlockOSThread()
		return dv.drv.check(r, "cuCtxSetCurrent")
	}
	return nil
}

func (dv *Device) unbind() { runtime.UnlockOSThread() }

// call runs one driver call with the context current and names it in the error.
func (dv *Device) call(name string, f func() Result) error {
	if err := dv.bind(); err != nil {
		return err
	}
	defer dv.unbind()
	return dv.drv.check(f(), name)
}

// Arch is the NVRTC architecture name of the device, e.g. "sm_90".
func (dv *Device) Arch() string { return fmt.Sprintf("sm_%d%d", dv.Major, dv.Minor) }

// MemInfo is the free and total device memory in bytes.
func (dv *Device) MemInfo() (free, total uint64, err error) {
	err = dv.call("cuMemGetInfo", func() Result { return dv.drv.cuMemGetInfo(&free, &total) })
	return
}

// Close releases the stream and the primary context.
func (dv *Device) Close() error {
	if dv.Stream != 0 {
		_ = dv.DestroyStream(dv.Stream)
		dv.Stream = 0
	}
	return dv.drv.check(dv.drv.cuDevicePrimaryCtxRelease(dv.dev), "cuDevicePrimaryCtxRelease")
}

// Sync waits for the device's compute stream.
func (dv *Device) Sync() error { return dv.SyncStream(dv.Stream) }

// SyncStream waits for stream s.
func (dv *Device) SyncStream(s uintptr) error {
	err := dv.call("cuStreamSynchronize", func() Result { return dv.drv.cuStreamSynchronize(s) })
	return dv.laterFault(err)
}

// laterFault marks a kernel fault seen at a synchronisation as raised by an
// earlier launch, and says how to find which.
func (dv *Device) laterFault(err error) error {
	if e, ok := err.(*Error); ok && e.Code.isKernelFault() && !dv.SyncEachLaunch {
		e.Hint = "raised by a kernel queued before this call; rerun with LITCACHE_CUDA_SYNC=1 to name it"
	}
	return err
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
	if err := dv.call(fmt.Sprintf("cuMemAlloc(%d bytes)", bytes), func() Result { return dv.drv.cuMemAlloc(&p, bytes) }); err != nil {
		return Buffer{}, err
	}
	now := dv.allocated.Add(int64(bytes))
	for {
		pk := dv.peak.Load()
		if now <= pk || dv.peak.CompareAndSwap(pk, now) {
			break
		}
	}
	return Buffer{Ptr: p, Bytes: bytes}, nil
}

// Free releases device memory.
func (dv *Device) Free(b Buffer) error {
	if b.Ptr == 0 {
		return nil
	}
	if err := dv.call("cuMemFree", func() Result { return dv.drv.cuMemFree(b.Ptr) }); err != nil {
		return err
	}
	dv.allocated.Add(-int64(b.Bytes))
	return nil
}

// AllocHost allocates page-locked host memory, which asynchronous copies
// read and write while the host goes on (the pipeline's staging buffers).
func (dv *Device) AllocHost(bytes int) ([]byte, error) {
	var p unsafe.Pointer
	if bytes <= 0 {
		bytes = 1
	}
	if err := dv.call("cuMemAllocHost", func() Result { return dv.drv.cuMemAllocHost(&p, uint64(bytes)) }); err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(p), bytes), nil
}

// FreeHost releases memory from AllocHost.
func (dv *Device) FreeHost(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return dv.call("cuMemFreeHost", func() Result { return dv.drv.cuMemFreeHost(unsafe.Pointer(&b[0])) })
}

// CopyToDevice copies host bytes to dst on the compute stream and waits.
func (dv *Device) CopyToDevice(dst Buffer, src []byte) error {
	if err := dv.CopyToDeviceAsync(dst, src, dv.Stream); err != nil {
		return err
	}
	return dv.Sync()
}

// CopyToDeviceAsync queues a host-to-device copy on stream. src must stay
// unchanged until the stream has run the copy; only page-locked src (from
// AllocHost) lets the copy overlap host work.
func (dv *Device) CopyToDeviceAsync(dst Buffer, src []byte, stream uintptr) error {
	if len(src) == 0 {
		return nil
	}
	if uint64(len(src)) > dst.Bytes {
		return fmt.Errorf("cuda: copy of %d bytes into a %d-byte buffer", len(src), dst.Bytes)
	}
	return dv.call("cuMemcpyHtoDAsync", func() Result {
		return dv.drv.cuMemcpyHtoDAsync(dst.Ptr, unsafe.Pointer(&src[0]), uint64(len(src)), stream)
	})
}

// CopyToHost waits for the compute stream, then copies device bytes into dst.
func (dv *Device) CopyToHost(dst []byte, src Buffer) error {
	if len(dst) == 0 {
		return nil
	}
	if uint64(len(dst)) > src.Bytes {
		return fmt.Errorf("cuda: copy of %d bytes out of a %d-byte buffer", len(dst), src.Bytes)
	}
	if err := dv.Sync(); err != nil {
		return err
	}
	return dv.call("cuMemcpyDtoH", func() Result { return dv.drv.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), src.Ptr, uint64(len(dst))) })
}

// CopyToHostAsync queues a copy of len(dst) device bytes at src into dst on
// stream; dst must be page-locked (AllocHost) and is complete once the
// stream has run the copy (an event recorded after it).
func (dv *Device) CopyToHostAsync(dst []byte, src uintptr, stream uintptr) error {
	if len(dst) == 0 {
		return nil
	}
	return dv.call("cuMemcpyDtoHAsync", func() Result {
		return dv.drv.cuMemcpyDtoHAsync(unsafe.Pointer(&dst[0]), src, uint64(len(dst)), stream)
	})
}

// CopyDeviceAsync queues a device-to-device copy of n bytes on stream.
func (dv *Device) CopyDeviceAsync(dst, src uintptr, n uint64, stream uintptr) error {
	if n == 0 {
		return nil
	}
	return dv.call("cuMemcpyDtoDAsync", func() Result { return dv.drv.cuMemcpyDtoDAsync(dst, src, n, stream) })
}

// Memset zeroes n bytes at dst on the compute stream.
func (dv *Device) Memset(dst uintptr, n uint64) error {
	if n == 0 {
		return nil
	}
	return dv.call("cuMemsetD8Async", func() Result { return dv.drv.cuMemsetD8Async(dst, 0, n, dv.Stream) })
}

// NewStream creates a non-blocking stream (the pipeline's copy stream).
func (dv *Device) NewStream() (uintptr, error) {
	var s uintptr
	err := dv.call("cuStreamCreate", func() Result { return dv.drv.cuStreamCreate(&s, 1 /* CU_STREAM_NON_BLOCKING */) })
	return s, err
}

// DestroyStream releases a stream from NewStream once its work is done.
func (dv *Device) DestroyStream(s uintptr) error {
	return dv.call("cuStreamDestroy", func() Result { return dv.drv.cuStreamDestroy(s) })
}

// Event is a CUDA event: a point in a stream that other streams and the
// host can wait for, and a timestamp.
type Event uintptr

// NewEvent creates an event (with timing; see ElapsedMs).
func (dv *Device) NewEvent() (Event, error) {
	var e uintptr
	err := dv.call("cuEventCreate", func() Result { return dv.drv.cuEventCreate(&e, 0) })
	return Event(e), err
}

// DestroyEvent releases an event.
func (dv *Device) DestroyEvent(e Event) error {
	return dv.call("cuEventDestroy", func() Result { return dv.drv.cuEventDestroy(uintptr(e)) })
}

// Record marks e at the current end of stream.
func (dv *Device) Record(e Event, stream uintptr) error {
	return dv.call("cuEventRecord", func() Result { return dv.drv.cuEventRecord(uintptr(e), stream) })
}

// WaitEvent makes stream's later work wait until e has happened.
func (dv *Device) WaitEvent(stream uintptr, e Event) error {
	return dv.call("cuStreamWaitEvent", func() Result { return dv.drv.cuStreamWaitEvent(stream, uintptr(e), 0) })
}

// EventSync blocks the host until e has happened.
func (dv *Device) EventSync(e Event) error {
	return dv.laterFault(dv.call("cuEventSynchronize", func() Result { return dv.drv.cuEventSynchronize(uintptr(e)) }))
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
	if err := dv.call("cuModuleLoadData", func() Result { return dv.drv.cuModuleLoadData(&m, unsafe.Pointer(&img[0])) }); err != nil {
		return nil, err
	}
	return &Module{dv: dv, mod: m}, nil
}

// Function looks a kernel up by its (extern "C") name.
func (m *Module) Function(name string) (*Function, error) {
	var f uintptr
	cname := cString(name)
	if err := m.dv.call("cuModuleGetFunction "+name, func() Result { return m.dv.drv.cuModuleGetFunction(&f, m.mod, cname) }); err != nil {
		return nil, err
	}
	return &Function{dv: m.dv, fn: f, Name: name}, nil
}
