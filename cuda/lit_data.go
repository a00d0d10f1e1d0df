package cuda

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/litcache/litcache/internal/half"
)

// DeviceRows is a table of embeddings resident on the GPU, (N,D): a cache's
// training split uploaded once, so that each step gathers its batch on the
// device by index instead of converting and copying B rows from the host.
// Rows are float16 (2.69M × 768 is 4.1 GB; an H200 has 139 GB) or float32,
// for float32 training on a float32 cache, where float16 would round the
// features (2.4e-4 relative) and the step would no longer be float32's.
type DeviceRows struct {
	b    *Backend
	buf  Buffer
	N, D int
	f32  bool
}

// NewDeviceRows allocates a table of n rows of width d, float16 unless f32.
func (b *Backend) NewDeviceRows(n, d int, f32 bool) (*DeviceRows, error) {
	if n < 1 || d < 1 {
		return nil, fmt.Errorf("cuda: device rows %d×%d", n, d)
	}
	elem, what := uint64(2), "float16"
	if f32 {
		elem, what = 4, "float32"
	}
	buf, err := b.dv.Alloc(uint64(n) * uint64(d) * elem)
	if err != nil {
		return nil, &OpError{Op: fmt.Sprintf("resident embeddings (%d rows of %d, %s)", n, d, what), Err: err}
	}
	return &DeviceRows{b: b, buf: buf, N: n, D: d, f32: f32}, nil
}

// Float32 reports whether the rows are stored in float32.
func (r *DeviceRows) Float32() bool { return r.f32 }

func (r *DeviceRows) flag() int32 { return boolInt(r.f32) }

// stageBytes is what one pinned staging slot carries per copy.
const stageBytes = 32 << 20

// UploadF32 copies rows (a whole number of rows, from first on) up through
// two pinned staging slots (a slot is refilled while the other one's copy
// runs), converted to float16 on the host, in parallel, for a float16 table.
func (r *DeviceRows) UploadF32(first int, rows []float32) error {
	if r.f32 {
		return r.upload(first, len(rows), func(dst []byte, lo int) {
			copy(unsafe.Slice((*float32)(unsafe.Pointer(&dst[0])), len(dst)/4), rows[lo:])
		})
	}
	return r.upload(first, len(rows), func(dst []byte, lo int) {
		convertF16(unsafe.Slice((*uint16)(unsafe.Pointer(&dst[0])), len(dst)/2), rows[lo:lo+len(dst)/2])
	})
}

// UploadF16 copies float16 rows (their bits) up, converted for a float32 table.
func (r *DeviceRows) UploadF16(first int, rows []uint16) error {
	if r.f32 {
		return r.upload(first, len(rows), func(dst []byte, lo int) {
			half.F16ToF32s(unsafe.Slice((*float32)(unsafe.Pointer(&dst[0])), len(dst)/4), rows[lo:lo+len(dst)/4])
		})
	}
	return r.upload(first, len(rows), func(dst []byte, lo int) {
		copy(unsafe.Slice((*uint16)(unsafe.Pointer(&dst[0])), len(dst)/2), rows[lo:])
	})
}

// upload copies n values from row first on, fill writing the stored bytes
// of values lo.. into each staging slot.
func (r *DeviceRows) upload(first, n int, fill func(dst []byte, lo int)) (err error) {
	defer Recover(&err)
	defer guard("resident embeddings upload")
	if n%r.D != 0 || first < 0 || first+n/r.D > r.N {
		return fmt.Errorf("cuda: upload of %d values at row %d into %d rows of %d", n, first, r.N, r.D)
	}
	dv := r.b.dv
	var slots [2][]byte
	var done [2]Event
	defer func() {
		_ = dv.Sync() // no copy may still read a slot (after a failure too)
		for i := range slots {
			if slots[i] != nil {
				_ = dv.FreeHost(slots[i])
			}
			if done[i] != 0 {
				_ = dv.DestroyEvent(done[i])
			}
		}
	}()
	for i := range slots {
		if slots[i], err = dv.AllocHost(stageBytes); err != nil {
			return &OpError{Op: "resident embeddings staging", Err: err}
		}
		if done[i], err = dv.NewEvent(); err != nil {
			return err
		}
		must(dv.Record(done[i], dv.Stream))
	}
	elem := 2
	if r.f32 {
		elem = 4
	}
	per := stageBytes / elem / r.D * r.D // values per slot, whole rows
	dst := r.buf.Ptr + uintptr(first*r.D*elem)
	for lo, s := 0, 0; lo < n; lo, s = lo+per, s^1 {
		k := min(per, n-lo)
		must(dv.EventSync(done[s]))
		fill(slots[s][:elem*k], lo)
		must(dv.CopyToDeviceAsync(Buffer{Ptr: dst + uintptr(elem*lo), Bytes: uint64(elem * k)}, slots[s][:elem*k], dv.Stream))
		must(dv.Record(done[s], dv.Stream))
	}
	return dv.Sync()
}

// convertF16 converts src to float16 bits in dst, over the machine's cores.
func convertF16(dst []uint16, src []float32) {
	workers := min(runtime.GOMAXPROCS(0), max(1, len(src)/(1<<16)))
	per := (len(src) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := w*per, min((w+1)*per, len(src))
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			half.F32ToF16s(dst[lo:hi], src[lo:hi])
		}()
	}
	wg.Wait()
}

// Free releases the table.
func (r *DeviceRows) Free() {
	if r != nil && r.buf.Ptr != 0 {
		_ = r.b.dv.Free(r.buf)
		r.buf = Buffer{}
	}
}

// DeviceCaptions is a table of token rows on the GPU, ids (K,T) zero
// padded, with each row's pooled position (where the tower reads the
// caption's embedding: its end-of-text) and, on the host, its length (for
// trimming a batch to its longest caption).
type DeviceCaptions struct {
	b    *Backend
	ids  Buffer // (K,T) int32
	pool Buffer // (K) int32
	K, T int
	lens []int
	pos  []int
}

// NewDeviceCaptions uploads ids (K,T) with each row's pooled position pool
// (K) (clip.TextTower.PoolPositions: the first end-of-text, else the largest id).
func (b *Backend) NewDeviceCaptions(ids []int32, K, T int, pool []int) (c *DeviceCaptions, err error) {
	defer Recover(&err)
	defer guard("caption table")
	if K < 1 || T < 1 || len(ids) != K*T || len(pool) != K {
		return nil, fmt.Errorf("cuda: caption table of %d ids and %d positions for %d rows of %d", len(ids), len(pool), K, T)
	}
	c = &DeviceCaptions{b: b, K: K, T: T, lens: make([]int, K), pos: append([]int(nil), pool...)}
	p32 := make([]int32, K)
	for k := 0; k < K; k++ {
		if pool[k] < 0 || pool[k] >= T {
			return nil, fmt.Errorf("cuda: caption %d pools at %d, outside its %d tokens", k, pool[k], T)
		}
		p32[k] = int32(pool[k])
		n := 1
		row := ids[k*T : (k+1)*T]
		for t := T - 1; t > 0; t-- {
			if row[t] != 0 {
				n = t + 1
				break
			}
		}
		c.lens[k] = max(n, pool[k]+1)
	}
	if c.ids, err = b.dv.Alloc(uint64(4 * K * T)); err != nil {
		return nil, &OpError{Op: "caption table", Err: err}
	}
	if c.pool, err = b.dv.Alloc(uint64(4 * K)); err != nil {
		c.Free()
		return nil, &OpError{Op: "caption table", Err: err}
	}
	must(b.dv.CopyToDevice(c.ids, unsafe.Slice((*byte)(unsafe.Pointer(&ids[0])), 4*len(ids))))
	must(b.dv.CopyToDevice(c.pool, unsafe.Slice((*byte)(unsafe.Pointer(&p32[0])), 4*K)))
	return c, nil
}

// Longest is the longest caption's length in tokens.
func (c *DeviceCaptions) Longest() int {
	n := 1
	for _, l := range c.lens {
		n = max(n, l)
	}
	return n
}

// Len is caption k's length in tokens (up to its last non-zero id, its
// pooled position included).
func (c *DeviceCaptions) Len(k int) int { return c.lens[k] }

// Free releases the table.
func (c *DeviceCaptions) Free() {
	if c == nil {
		return
	}
	_ = c.b.dv.Free(c.ids)
	_ = c.b.dv.Free(c.pool)
	c.ids, c.pool = Buffer{}, Buffer{}
}
