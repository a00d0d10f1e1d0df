//go:build !amd64 || purego

package backend

// bestKernel is the portable Go micro-kernel on architectures without an
// assembly one.
func bestKernel() gemmKernel { return goKernel2x4 }
