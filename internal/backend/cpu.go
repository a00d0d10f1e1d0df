package backend

import (
	"fmt"
	"runtime"
	"sync"
)

// CPUOptions configures NewCPUWith.
type CPUOptions struct {
	// DisableBLAS forces the pure-Go GEMM even when OpenBLAS is present.
	DisableBLAS bool
	// Threads is the number of goroutines ops split work over;
	// 0 means runtime.GOMAXPROCS(0).
	Threads int
	// PreferBLAS uses OpenBLAS whenever it loads. By default OpenBLAS is
	// skipped where the pure-Go GEMM has its AVX-512 kernel, which measured
	// 1.1–2.9× OpenBLAS 0.3.21 on the project's Zen 5 machines (OpenBLAS runs
	// its AVX2 Haswell kernel there); see NOTES.
	PreferBLAS bool
	// PortableKernel makes the pure-Go GEMM use its portable Go micro-kernel
	// even where an assembly one (AVX2+FMA) is available; for tests and
	// benchmarks of the code path other architectures take.
	PortableKernel bool
}

// CPU is the float32 reference implementation of Backend. Work is split over
// Threads goroutines; matrix products go to the blocked, packed pure-Go GEMM
// or to OpenBLAS cblas_sgemm found at run time (see CPUOptions.PreferBLAS).
// A CPU is safe for concurrent use by several goroutines.
type CPU struct {
	threads int
	blas    *openBLAS  // nil: pure-Go GEMM
	kernel  gemmKernel // the pure-Go GEMM's micro-kernel
	bufs    *gemmBuffers
	pool    *tensorPool // storage of freed tensors, for reuse (pool.go)
}

var (
	_ Backend = (*CPU)(nil)
	_ Viewer  = (*CPU)(nil)
	_ Trimmer = (*CPU)(nil)
)

// NewCPU returns a CPU backend using every core, with the faster GEMM of the
// machine: the pure-Go one when it has its AVX-512 kernel, else OpenBLAS when
// present, else the pure-Go one.
func NewCPU() *CPU { return NewCPUWith(CPUOptions{}) }

// NewCPUWith returns a CPU backend configured by opts.
func NewCPUWith(opts CPUOptions) *CPU {
	c := &CPU{threads: opts.Threads, kernel: kernels()[0], bufs: &gemmBuffers{}, pool: newTensorPool()}
	if c.threads <= 0 {
		c.threads = runtime.GOMAXPROCS(0)
	}
	if opts.PortableKernel {
		c.kernel = goKernel2x4
	}
	useBLAS := !opts.DisableBLAS && (opts.PreferBLAS || !c.kernel.beatsBLAS)
	if useBLAS {
		if b, err := loadOpenBLAS(); err == nil {
			c.blas = b
			// OpenBLAS's own worker threads busy-wait (sched_yield) between
			// calls and then compete with this backend's goroutines for the
			// cores; run it single-threaded and split each product over
			// goroutines instead (gemm.go).
			if b.setThreads != nil {
				b.setThreads(1)
			}
		}
	}
	return c
}

// Name identifies the backend and its GEMM path.
func (c *CPU) Name() string {
	if c.blas != nil {
		return "cpu/float32 (openblas)"
	}
	return "cpu/float32 (go " + c.kernel.name + ")"
}

// Threads is the number of goroutines the backend splits work over.
func (c *CPU) Threads() int { return c.threads }

// BLAS describes the OpenBLAS library in use ("" when the pure-Go GEMM is used).
func (c *CPU) BLAS() string {
	if c.blas == nil {
		return ""
	}
	return c.blas.describe()
}

// cpuTensor is a CPU tensor: a float32 slice and its shape. An owner's
// storage goes back to the pool on Free; views (Reshape, View) own nothing.
type cpuTensor struct {
	data  []float32
	shape []int
	owner bool
}

func (t *cpuTensor) Shape() []int { return t.shape }
func (t *cpuTensor) Len() int     { return len(t.data) }

// Data returns the storage of a CPU tensor without copying; writes through it
// change the tensor. It panics when t does not belong to a CPU backend.
func Data(t Tensor) []float32 { return data(t) }

func data(t Tensor) []float32 {
	if t == nil {
		return nil
	}
	ct, ok := t.(*cpuTensor)
	if !ok {
		panic(fmt.Sprintf("backend: cpu: tensor of type %T does not belong to the CPU backend", t))
	}
	if ct.data == nil && ct.shape == nil {
		panic("backend: cpu: tensor used after Free")
	}
	return ct.data
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("backend: cpu: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

// rowsCols views t as a matrix: its last dim as columns, the rest as rows.
func rowsCols(t Tensor) (rows, cols int) {
	s := t.Shape()
	if len(s) == 0 {
		return 1, 1
	}
	cols = s[len(s)-1]
	if cols == 0 {
		return 0, 0
	}
	return t.Len() / cols, cols
}

// Zeros allocates a zero-filled tensor (pooled storage when some of its
// length was freed).
func (c *CPU) Zeros(shape ...int) Tensor {
	t, fresh := c.alloc(shape)
	if !fresh {
		clear(t.data)
	}
	return t
}

// alloc returns an owning tensor of shape, its storage pooled (stale
// contents) or fresh (zeroed).
func (c *CPU) alloc(shape []int) (t *cpuTensor, fresh bool) {
	n := numel(shape)
	t = &cpuTensor{shape: append([]int(nil), shape...)}
	if c.pool == nil {
		t.data = make([]float32, n)
		return t, true
	}
	t.data, fresh = c.pool.get(n)
	t.owner = true
	return t, fresh
}

// FromFloat32 allocates a tensor holding a copy of data.
func (c *CPU) FromFloat32(d []float32, shape ...int) Tensor {
	n := numel(shape)
	if len(d) != n {
		panic(fmt.Sprintf("backend: cpu: FromFloat32: %d values for shape %v (%d elements)", len(d), shape, n))
	}
	t, _ := c.alloc(shape)
	copy(t.data, d)
	return t
}

// ToFloat32 copies t into dst when it is large enough, else into a new slice.
func (c *CPU) ToFloat32(t Tensor, dst []float32) []float32 {
	d := data(t)
	if cap(dst) < len(d) {
		dst = make([]float32, len(d))
	}
	dst = dst[:len(d)]
	copy(dst, d)
	return dst
}

// Reshape returns a tensor sharing t's memory with another shape of equal size.
func (c *CPU) Reshape(t Tensor, shape ...int) Tensor {
	d := data(t)
	if n := numel(shape); n != len(d) {
		panic(fmt.Sprintf("backend: cpu: Reshape %v (%d elements) to %v (%d elements)", t.Shape(), len(d), shape, n))
	}
	return &cpuTensor{data: d, shape: append([]int(nil), shape...)}
}

// View returns a tensor over the first numel(shape) elements of t's storage.
func (c *CPU) View(t Tensor, shape ...int) Tensor {
	d := data(t)
	n := numel(shape)
	if n > len(d) {
		panic(fmt.Sprintf("backend: cpu: View %v (%d elements) of %v (%d elements)", shape, n, t.Shape(), len(d)))
	}
	return &cpuTensor{data: d[:n:n], shape: append([]int(nil), shape...)}
}

// Free releases t: an owner's storage goes to the pool for the next
// allocation of its length (pool.go); views release nothing.
func (c *CPU) Free(t Tensor) {
	if t == nil {
		return
	}
	if ct, ok := t.(*cpuTensor); ok {
		if ct.owner && ct.data != nil && c.pool != nil {
			c.pool.put(ct.data)
		}
		ct.data, ct.shape, ct.owner = nil, nil, false
	}
}

// Trim releases the storage kept for reuse to the garbage collector.
func (c *CPU) Trim() {
	if c.pool != nil {
		c.pool.trim()
	}
}

// MemStats counts the backend's tensor storage.
func (c *CPU) MemStats() MemStats {
	if c.pool == nil {
		return MemStats{}
	}
	return c.pool.memStats()
}

// Zero sets every element of t to 0.
func (c *CPU) Zero(t Tensor) { clear(data(t)) }

// Copy copies src into dst (equal Len).
func (c *CPU) Copy(dst, src Tensor) {
	d, s := data(dst), data(src)
	mustLen("Copy", "dst", len(d), len(s))
	copy(d, s)
}

func mustLen(op, name string, got, want int) {
	if got != want {
		panic(fmt.Sprintf("backend: cpu: %s: %s has %d elements, want %d", op, name, got, want))
	}
}

// parallel runs fn over [0,n) split into at most c.threads contiguous chunks,
// running inline when the work (n·cost, in rough flops) is too small to share.
func (c *CPU) parallel(n, cost int, fn func(lo, hi int)) {
	const minWork = 1 << 15
	workers := c.threads
	if w := n * max(cost, 1) / minWork; w < workers {
		workers = w
	}
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, hi)
	}
	wg.Wait()
}

// GemmKernel names the micro-kernel of the pure-Go GEMM ("avx2 6x16", "go 2x4").
func (c *CPU) GemmKernel() string { return c.kernel.name }
