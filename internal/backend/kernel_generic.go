//go:build !amd64 || purego

package backend

// kernels lists the micro-kernels this CPU can run, best first: here only the
// portable Go one.
func kernels() []gemmKernel { return []gemmKernel{goKernel2x4} }
