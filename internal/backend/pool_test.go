package backend_test

import (
	"sync"
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

// TestPoolReuse: freed storage serves the next allocation of its length
// (no new bytes), comes back zeroed from Zeros and overwritten from
// FromFloat32; other lengths allocate; Trim empties the pool.
func TestPoolReuse(t *testing.T) {
	c := backend.NewCPU()
	a := c.Zeros(4, 8)
	d := backend.Data(a)
	for i := range d {
		d[i] = 7
	}
	c.Free(a)
	st := c.MemStats()
	if st.Allocated != 4*32 || st.InUse != 0 || st.Pooled != 4*32 {
		t.Fatalf("after one alloc and free: %+v", st)
	}
	b := c.Zeros(8, 4) // same length, other shape
	for i, v := range backend.Data(b) {
		if v != 0 {
			t.Fatalf("reused Zeros has %g at %d", v, i)
		}
	}
	if got := c.MemStats(); got.Allocated != st.Allocated || got.InUse != 4*32 || got.Pooled != 0 {
		t.Fatalf("reuse allocated: %+v", got)
	}
	c.Free(b)
	f := c.FromFloat32(make([]float32, 32), 32)
	if got := c.MemStats(); got.Allocated != st.Allocated {
		t.Fatalf("FromFloat32 of a pooled length allocated: %+v", got)
	}
	c.Free(f)
	c.Free(f) // a second Free must not pool the storage twice
	if got := c.MemStats(); got.Pooled != 4*32 {
		t.Fatalf("double Free: %+v", got)
	}
	g := c.Zeros(33)
	if got := c.MemStats(); got.Allocated != st.Allocated+4*33 {
		t.Fatalf("a new length did not allocate: %+v", got)
	}
	c.Free(g)
	c.Trim()
	if got := c.MemStats(); got.Pooled != 0 {
		t.Fatalf("Trim left %+v", got)
	}
	c.Free(c.Zeros(32))
	if got := c.MemStats(); got.Allocated != st.Allocated+4*33+4*32 {
		t.Fatalf("allocation after Trim reused: %+v", got)
	}
}

// TestView: a view shares the leading elements, owns nothing (freeing it
// pools nothing), and may not exceed its tensor.
func TestView(t *testing.T) {
	c := backend.NewCPU()
	w := c.Zeros(10, 3)
	v := c.View(w, 2, 3)
	backend.Data(v)[5] = 1
	if backend.Data(w)[5] != 1 || v.Len() != 6 {
		t.Fatalf("view does not share storage")
	}
	r := c.Reshape(w, 3, 10)
	c.Free(v)
	c.Free(r)
	if st := c.MemStats(); st.Pooled != 0 || st.InUse != 4*30 {
		t.Fatalf("freeing views pooled storage: %+v", st)
	}
	defer func() {
		if recover() == nil {
			t.Error("a view larger than its tensor did not panic")
		}
	}()
	c.View(w, 31)
}

// TestPoolConcurrent: goroutines allocating and freeing at once (run with
// -race) end with every byte accounted for.
func TestPoolConcurrent(t *testing.T) {
	c := backend.NewCPU()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				x := c.Zeros(16 + i%3)
				backend.Data(x)[0] = float32(g)
				c.Free(x)
			}
		}()
	}
	wg.Wait()
	st := c.MemStats()
	if st.InUse != 0 || st.Pooled != st.Allocated {
		t.Fatalf("after concurrent use: %+v", st)
	}
	// At most one buffer per length per goroutine alive at once.
	if st.Allocated > 4*4*(16+17+18) {
		t.Errorf("allocated %d bytes: the pool was not reused", st.Allocated)
	}
}
