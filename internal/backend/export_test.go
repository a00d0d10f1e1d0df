package backend

// NewCPUPortable returns a CPU backend without OpenBLAS that uses the portable
// Go micro-kernel, so the tests reach it on machines with an assembly one.
func NewCPUPortable(threads int) *CPU {
	return NewCPUWith(CPUOptions{DisableBLAS: true, Threads: threads, PortableKernel: true})
}
