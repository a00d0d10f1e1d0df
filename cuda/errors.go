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
)

// Result is a CUresult from the driver API.
type Result int32

// Error is a failed driver call: which call, and the driver's name and text for the code.
type Error struct {
	Call string
	Code Result
	Name string
	Text string
}

func (e *Error) Error() string {
	return fmt.Sprintf("cuda: %s: %s (%d): %s", e.Call, e.Name, e.Code, e.Text)
}
