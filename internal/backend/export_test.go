package backend

// NewCPUPortable returns a CPU backend without OpenBLAS that uses the portable
// Go micro-kernel, so the tests reach it on machines with an assembly one.
func NewCPUPortable(threads int) *CPU {
	return NewCPUWith(CPUOptions{DisableBLAS: true, Threads: threads, PortableKernel: true})
}

// NewCPUEachKernel returns one CPU backend without OpenBLAS per micro-kernel
// this machine can run, so that every kernel is tested where it can be.
func NewCPUEachKernel(threads int) []*CPU {
	var cs []*CPU
	for _, k := range kernels() {
		c := NewCPUWith(CPUOptions{DisableBLAS: true, Threads: threads})
		c.kernel = k
		cs = append(cs, c)
	}
	return cs
}
