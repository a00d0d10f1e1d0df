package cuda

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
)

// ImageBatch preprocesses decoded images on the GPU (the --decode gpu path):
// each device RGB image is resized and centre-cropped into its slot of a
// (maxBatch,S,S,3) uint8 buffer by image.cu's resize kernels, which apply
// the fixed-point plan imageproc computes for the CPU (Preprocessor.Plan),
// so the bytes equal the CPU's Resized of the same RGB; Tensor then
// normalises the batch into the tower's input. Use from one goroutine.
type ImageBatch struct {
	b        *Backend
	pre      imageproc.Preprocessor
	maxBatch int
	u8       Buffer
	lut      Buffer
	tmp      Buffer
	n        int

	mu   sync.Mutex
	taps map[[2]int]planTaps // by source (w, h)
}

// planTaps is one plan's taps in device memory (both passes; a pass the
// plan skips gets identity taps, which copy exactly).
type planTaps struct {
	buf            Buffer
	hStart, hN, hK uintptr
	vStart, vN, vK uintptr
	hKSize, vKSize int
	x0, row0, rows int
}

const maxCachedPlans = 4096

// NewImageBatch prepares batches of up to maxBatch images for pre (its Size,
// Mean and Std).
func (b *Backend) NewImageBatch(pre imageproc.Preprocessor, maxBatch int) (ib *ImageBatch, err error) {
	S := pre.Size
	if maxBatch <= 0 || S <= 0 {
		return nil, fmt.Errorf("cuda: image batch of %d images of %d px", maxBatch, S)
	}
	ib = &ImageBatch{b: b, pre: pre, maxBatch: maxBatch, taps: map[[2]int]planTaps{}}
	if ib.u8, err = b.dv.Alloc(uint64(maxBatch * S * S * 3)); err != nil {
		return nil, err
	}
	table := pre.NormalizeTable()
	if ib.lut, err = b.dv.Alloc(3 * 256 * 4); err != nil {
		ib.Close()
		return nil, err
	}
	if err = b.dv.CopyToDevice(ib.lut, unsafe.Slice((*byte)(unsafe.Pointer(&table[0][0])), 3*256*4)); err != nil {
		ib.Close()
		return nil, err
	}
	return ib, nil
}

// Len is the number of images added since the last Tensor.
func (ib *ImageBatch) Len() int { return ib.n }

// identity is taps that copy n samples starting at x0.
func identity(n, x0 int) *imageproc.ResizeTaps {
	t := &imageproc.ResizeTaps{KSize: 1, Start: make([]int32, n), N: make([]int32, n), K: make([]int32, n)}
	for i := range n {
		t.Start[i], t.N[i], t.K[i] = int32(x0+i), 1, 1<<22
	}
	return t
}

// tapsFor uploads (once per source size) the plan's taps.
func (ib *ImageBatch) tapsFor(w, h int) (planTaps, error) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	if pt, ok := ib.taps[[2]int{w, h}]; ok {
		return pt, nil
	}
	pl := ib.pre.Plan(w, h)
	S := pl.Size
	ht, vt := pl.H, pl.V
	x0 := 0
	if ht == nil {
		ht, x0 = identity(S, 0), pl.X0
	}
	if vt == nil {
		vt = identity(S, 0)
	}
	var host []int32
	add := func(v []int32) int { off := len(host); host = append(host, v...); return off }
	hs, hn, hk := add(ht.Start), add(ht.N), add(ht.K)
	vs, vn, vk := add(vt.Start), add(vt.N), add(vt.K)
	buf, err := ib.b.dv.Alloc(uint64(4 * len(host)))
	if err != nil {
		return planTaps{}, err
	}
	if err := ib.b.dv.CopyToDeviceAsync(buf, unsafe.Slice((*byte)(unsafe.Pointer(&host[0])), 4*len(host)), ib.b.dv.Stream); err != nil {
		return planTaps{}, err
	}
	at := func(off int) uintptr { return buf.Ptr + uintptr(4*off) }
	pt := planTaps{buf: buf, hStart: at(hs), hN: at(hn), hK: at(hk), vStart: at(vs), vN: at(vn), vK: at(vk),
		hKSize: ht.KSize, vKSize: vt.KSize, x0: x0, row0: pl.Rows.Min.Y, rows: pl.Rows.Dy()}
	if len(ib.taps) >= maxCachedPlans {
		// Too many sizes to keep: forget them all (after queued resizes used them).
		if err := ib.b.dv.Sync(); err != nil {
			return planTaps{}, err
		}
		for k, old := range ib.taps {
			_ = ib.b.dv.Free(old.buf)
			delete(ib.taps, k)
		}
	}
	ib.taps[[2]int{w, h}] = pt
	return pt, nil
}

// Add queues the resize and crop of one w×h RGB image in device memory at
// src (rows of pitch bytes) into the batch's next slot, on the compute
// stream. src must stay valid until the stream has run it.
func (ib *ImageBatch) Add(src uintptr, pitch, w, h int) (err error) {
	defer Recover(&err)
	if ib.n == ib.maxBatch {
		return fmt.Errorf("cuda: image batch full (%d)", ib.maxBatch)
	}
	if w <= 0 || h <= 0 || pitch < 3*w {
		return fmt.Errorf("cuda: image of %d×%d with pitch %d", w, h, pitch)
	}
	pt, err := ib.tapsFor(w, h)
	if err != nil {
		return err
	}
	S := ib.pre.Size
	rowLen := S * 3
	tmpBytes := uint64(pt.rows * rowLen)
	if ib.tmp.Bytes < tmpBytes {
		if ib.tmp.Ptr != 0 {
			ib.b.release(ib.tmp) // stream order keeps the queued reads of the old one first
		}
		ib.tmp = ib.b.alloc(tmpBytes)
	}
	b := ib.b
	must(b.k.launchResizeHU8(b.gridN(pt.rows*rowLen), ib.tmp.Ptr, src, int64(pitch), int32(pt.x0), int32(pt.row0),
		int32(pt.rows), pt.hStart, pt.hN, pt.hK, int32(pt.hKSize), int32(S)))
	dst := ib.u8.Ptr + uintptr(ib.n*S*rowLen)
	must(b.k.launchResizeVU8(b.gridN(S*rowLen), dst, ib.tmp.Ptr, int32(rowLen), 0, pt.vStart, pt.vN, pt.vK, int32(pt.vKSize), int32(S)))
	ib.n++
	return nil
}

// Tensor queues the normalisation of the images added so far into a new
// (n,3,S,S) tensor of the backend's precision (the caller frees it) and
// empties the batch.
func (ib *ImageBatch) Tensor() (t backend.Tensor, err error) {
	defer Recover(&err)
	if ib.n == 0 {
		return nil, fmt.Errorf("cuda: empty image batch")
	}
	S := ib.pre.Size
	out := ib.b.scratch(ib.n, 3, S, S)
	must(ib.b.k.launchNormalizeU8(ib.b.gridN(out.n), out.buf.Ptr, ib.u8.Ptr, ib.lut.Ptr, int32(ib.n), int32(S)))
	ib.n = 0
	return out, nil
}

// Close waits for queued work and releases the batch's memory.
func (ib *ImageBatch) Close() error {
	err := ib.b.dv.Sync()
	for k, pt := range ib.taps {
		_ = ib.b.dv.Free(pt.buf)
		delete(ib.taps, k)
	}
	_ = ib.b.dv.Free(ib.u8)
	_ = ib.b.dv.Free(ib.lut)
	if ib.tmp.Ptr != 0 {
		ib.b.release(ib.tmp)
	}
	ib.u8, ib.lut, ib.tmp = Buffer{}, Buffer{}, Buffer{}
	return err
}
