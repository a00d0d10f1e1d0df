package cuda

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
)

// ImageBatch preprocesses decoded images on the GPU (the --decode gpu path):
// each device RGB image is resized and centre-cropped (Add), or resized by
// any plan such as a random resized crop (AddPlan), into its slot of a
// (maxBatch,S,S,3) uint8 buffer by image.cu's resize kernels, which apply
// the fixed-point plan imageproc computes for the CPU (Preprocessor.Plan,
// PlanRandom), so the bytes equal the CPU's Resized (RandomResized) of the
// same RGB; a view the CPU made goes in as it is (AddHost). Tensor then
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
	x1             int // one past the last column the horizontal pass reads
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

// tapsFor uploads (once per source size) the eval transform's plan's taps.
func (ib *ImageBatch) tapsFor(w, h int) (planTaps, error) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	if pt, ok := ib.taps[[2]int{w, h}]; ok {
		return pt, nil
	}
	host, pt := tapsOf(ib.pre.Plan(w, h))
	buf, err := ib.b.dv.Alloc(uint64(4 * len(host)))
	if err != nil {
		return planTaps{}, err
	}
	if err := ib.b.dv.CopyToDeviceAsync(buf, int32Bytes(host), ib.b.dv.Stream); err != nil {
		return planTaps{}, err
	}
	pt.at(buf)
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

// tapsOf lays a plan's taps out in one host array (both passes; a pass the
// plan skips gets identity taps, which copy exactly); pt holds their offsets
// until at places them in a device buffer.
func tapsOf(pl imageproc.ResizePlan) ([]int32, planTaps) {
	S := pl.Size
	ht, vt := pl.H, pl.V
	if ht == nil {
		ht = identity(S, 0)
	}
	if vt == nil {
		vt = identity(S, 0)
	}
	var host []int32
	add := func(v []int32) uintptr { off := len(host); host = append(host, v...); return uintptr(4 * off) }
	pt := planTaps{hStart: add(ht.Start), hN: add(ht.N), hK: add(ht.K), vStart: add(vt.Start), vN: add(vt.N), vK: add(vt.K),
		hKSize: ht.KSize, vKSize: vt.KSize, x0: pl.X0, row0: pl.Rows.Min.Y, rows: pl.Rows.Dy()}
	// The kernels read columns x0+Start[i] .. +N[i] of rows row0 .. row0+rows.
	pt.x1 = pl.X0
	for i := range ht.Start {
		pt.x1 = max(pt.x1, pl.X0+int(ht.Start[i]+ht.N[i]))
	}
	return host, pt
}

// at turns pt's offsets into addresses in buf.
func (pt *planTaps) at(buf Buffer) {
	pt.buf = buf
	for _, p := range []*uintptr{&pt.hStart, &pt.hN, &pt.hK, &pt.vStart, &pt.vN, &pt.vK} {
		*p += buf.Ptr
	}
}

func int32Bytes(v []int32) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)) }

// DeviceImage is a decoded RGB image in device memory: H rows of Pitch
// bytes, each W interleaved RGB pixels.
type DeviceImage struct {
	Ptr         uintptr
	Pitch, W, H int
}

// Add queues the eval transform's resize and crop of one w×h RGB image in
// device memory at src (rows of pitch bytes) into the batch's next slot, on
// the compute stream. src must stay valid until the stream has run it.
func (ib *ImageBatch) Add(src uintptr, pitch, w, h int) (err error) {
	defer Recover(&err)
	img := DeviceImage{Ptr: src, Pitch: pitch, W: w, H: h}
	if err := ib.check(img); err != nil {
		return err
	}
	pt, err := ib.tapsFor(w, h)
	if err != nil {
		return err
	}
	return ib.resize(img, pt)
}

// AddPlan queues the resize plan pl (imageproc's Plan or PlanRandom for
// img's size: an eval view or a random resized crop) of img into the
// batch's next slot. Its taps are uploaded for this one call.
func (ib *ImageBatch) AddPlan(img DeviceImage, pl imageproc.ResizePlan) (err error) {
	defer Recover(&err)
	if err := ib.check(img); err != nil {
		return err
	}
	if pl.Size != ib.pre.Size {
		return fmt.Errorf("cuda: a resize plan to %d px into a batch of %d px", pl.Size, ib.pre.Size)
	}
	host, pt := tapsOf(pl)
	if pt.row0 < 0 || pt.row0+pt.rows > img.H || pt.x0 < 0 || pt.x1 > img.W {
		return fmt.Errorf("cuda: resize plan reads columns %d..%d and rows %d..%d of a %d×%d image", pt.x0, pt.x1, pt.row0, pt.row0+pt.rows, img.W, img.H)
	}
	buf := ib.b.alloc(uint64(4 * len(host)))
	defer ib.b.release(buf) // stream order keeps the resize's reads before any later user's writes
	must(ib.b.dv.CopyToDeviceAsync(buf, int32Bytes(host), ib.b.dv.Stream))
	pt.at(buf)
	return ib.resize(img, pt)
}

// AddHost copies one S×S RGB image already resized on the host (HWC uint8,
// as imageproc's Resized and RandomResized give it) into the batch's next
// slot: a view the CPU made, beside the GPU's.
func (ib *ImageBatch) AddHost(pix []byte) (err error) {
	defer Recover(&err)
	S := ib.pre.Size
	if len(pix) != S*S*3 {
		return fmt.Errorf("cuda: %d bytes for a %d×%d RGB image", len(pix), S, S)
	}
	if ib.n == ib.maxBatch {
		return fmt.Errorf("cuda: image batch full (%d)", ib.maxBatch)
	}
	slot := Buffer{Ptr: ib.u8.Ptr + uintptr(ib.n*S*S*3), Bytes: uint64(S * S * 3)}
	if err := ib.b.dv.CopyToDeviceAsync(slot, pix, ib.b.dv.Stream); err != nil {
		return err
	}
	ib.n++
	return nil
}

func (ib *ImageBatch) check(img DeviceImage) error {
	if ib.n == ib.maxBatch {
		return fmt.Errorf("cuda: image batch full (%d)", ib.maxBatch)
	}
	if img.W <= 0 || img.H <= 0 || img.Pitch < 3*img.W {
		return fmt.Errorf("cuda: image of %d×%d with pitch %d", img.W, img.H, img.Pitch)
	}
	return nil
}

// resize queues the two passes of pt from img into the next slot.
func (ib *ImageBatch) resize(img DeviceImage, pt planTaps) error {
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
	must(b.k.launchResizeHU8(b.gridN(pt.rows*rowLen), ib.tmp.Ptr, img.Ptr, int64(img.Pitch), int32(pt.x0), int32(pt.row0),
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
