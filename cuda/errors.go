// Package cuda is litcache's GPU backend: the CUDA driver API, NVRTC,
// cuBLASLt and nvJPEG loaded at run time with purego (DESIGN.md decision 1),
// so the same CGO_ENABLED=0 binary runs with or without a GPU and with
// whichever CUDA major (13, 12 or 11) the machine has. Kernels are .cu sources
// embedded in the binary and compiled by NVRTC for the GPU's own architecture
// at first use; the cubins are cached on disk.
package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
)

var (
	// ErrNoDriver means libcuda.so.1 could not be loaded: no NVIDIA driver.
	ErrNoDriver = errors.New("cuda: no CUDA driver (libcuda.so.1) found")
	// ErrNoDevice means the driver loaded but reports no usable GPU.
	ErrNoDevice = errors.New("cuda: no CUDA device found")
	// ErrNoNVRTC means no NVRTC library (libnvrtc.so.13/.12/.11.2) could be loaded.
	ErrNoNVRTC = errors.New("cuda: NVRTC not found")
	// ErrNoCublasLt means no cuBLASLt library could be loaded.
	ErrNoCublasLt = errors.New("cuda: cuBLASLt not found")
	// ErrNoNVJPEG means no nvJPEG library could be loaded.
	ErrNoNVJPEG = errors.New("cuda: nvJPEG not found")
	// ErrNoAlgorithm means cuBLASLt offers no algorithm for a GEMM's shape,
	// types and alignment; the backend then runs its own GEMM kernel.
	ErrNoAlgorithm = errors.New("cuda: cuBLASLt has no algorithm")
)

// Result is a CUresult from the driver API.
type Result int32

const errOutOfMemory Result = 2 // CUDA_ERROR_OUT_OF_MEMORY

// isKernelFault reports codes that a faulting kernel leaves behind (sticky:
// the context is unusable afterwards), reported by whatever call comes next.
func (r Result) isKernelFault() bool {
	switch r {
	case 700, 702, 714, 715, 716, 717, 718, 719: // ILLEGAL_ADDRESS, LAUNCH_TIMEOUT, HARDWARE_STACK_ERROR … LAUNCH_FAILED
		return true
	}
	return false
}

// Error is a failed driver call: which call, and the driver's name and text
// for the code (cuGetErrorName, cuGetErrorString).
type Error struct {
	Call string
	Code Result
	Name string
	Text string
	// Hint says where to look when the call only reports an earlier fault.
	Hint string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("cuda: %s: %s (%d): %s", e.Call, e.Name, e.Code, e.Text)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// OpError is a device failure inside a Backend op. backend.Backend has no
// error returns, so an op panics with an *OpError; Recover turns it
// back into an error. Err is the *Error of the driver call, a cuBLASLt or
// NVRTC failure, or ErrNoAlgorithm.
type OpError struct {
	Op  string // the Backend method, e.g. "Attention"
	Err error
}

func (e *OpError) Error() string {
	return "cuda: " + e.Op + ": " + strings.TrimPrefix(e.Err.Error(), "cuda: ")
}

func (e *OpError) Unwrap() error { return e.Err }

// Recover turns a panic carrying an error (an *OpError from a failing op)
// into *err, for the function that drives a backend:
//
//	func run(be backend.Backend) (err error) {
//		defer cuda.Recover(&err)
//		... ops ...
//	}
//
// Panics that are not errors (a shape mismatch: a bug) keep unwinding, and
// so do the runtime's own (a nil dereference, an index out of range: bugs
// whose stack matters more than a message). On the CPU backend it is a no-op.
func Recover(err *error) {
	if r := recover(); r != nil {
		if _, bug := r.(runtime.Error); bug {
			panic(r)
		}
		if e, ok := r.(error); ok {
			*err = e
			return
		}
		panic(r)
	}
}

// guard is deferred by every Backend method: it names the op in a device
// error passing through (the innermost op, when ops nest).
func guard(op string) {
	if r := recover(); r != nil {
		if e, ok := r.(error); ok {
			var oe *OpError
			if !errors.As(e, &oe) {
				r = &OpError{Op: op, Err: e}
			}
		}
		panic(r)
	}
}
