package cuda

import (
	"fmt"
	"unsafe"

	"github.com/litcache/litcache/internal/backend"
)

// ImageUploader moves batches of decoded uint8 images to the GPU while the
// GPU works on the batch before (the host↔device pipeline of issue 10):
//
//   - two slots, each a page-locked host buffer and a device buffer of
//     maxBatch S×S×3 uint8 images (HWC, as imageproc's Resized gives them);
//   - the host fills one slot while the other's copy and normalisation run;
//   - the copy runs on a stream of its own, and the compute stream waits for
//     it by an event before normalising, so the copy of batch i+1 overlaps
//     the tower on batch i;
//   - ToTensor+Normalize and the conversion to bf16 run on the GPU
//     (normalize_u8, through imageproc's own float32 table), so the host
//     moves 1 byte per value instead of converting 4-byte floats;
//   - a slot is handed back for filling only after the kernel that read it
//     has run (an event on the compute stream), so neither its host bytes
//     nor its device bytes are overwritten early.
//
// One goroutine drives an uploader (Next, Submit in turn).
type ImageUploader struct {
	b        *Backend
	size     int
	maxBatch int
	copy     uintptr // the copy stream
	lut      Buffer  // 3×256 float32
	slots    [2]uploadSlot
	next     int
	filling  int // the slot Next returned, -1 when none
}

type uploadSlot struct {
	host     []byte // page-locked
	dev      Buffer
	copied   Event // on the copy stream, after the upload
	consumed Event // on the compute stream, after the normalisation that read dev
	inUse    bool  // consumed has been recorded and not yet waited for
}

// NewImageUploader makes an uploader for batches of up to maxBatch size×size
// images, normalised with table (imageproc's Preprocessor.NormalizeTable).
func (b *Backend) NewImageUploader(maxBatch, size int, table [3][256]float32) (u *ImageUploader, err error) {
	defer Recover(&err)
	if maxBatch <= 0 || size <= 0 {
		return nil, fmt.Errorf("cuda: image uploader for %d images of %d px", maxBatch, size)
	}
	u = &ImageUploader{b: b, size: size, maxBatch: maxBatch, filling: -1}
	dv := b.dv
	if u.copy, err = dv.NewStream(); err != nil {
		return nil, err
	}
	bytes := maxBatch * size * size * 3
	for i := range u.slots {
		s := &u.slots[i]
		if s.host, err = dv.AllocHost(bytes); err != nil {
			u.Close()
			return nil, err
		}
		if s.dev, err = dv.Alloc(uint64(bytes)); err != nil {
			u.Close()
			return nil, err
		}
		if s.copied, err = dv.NewEvent(); err != nil {
			u.Close()
			return nil, err
		}
		if s.consumed, err = dv.NewEvent(); err != nil {
			u.Close()
			return nil, err
		}
	}
	if u.lut, err = dv.Alloc(3 * 256 * 4); err != nil {
		u.Close()
		return nil, err
	}
	if err = dv.CopyToDevice(u.lut, unsafe.Slice((*byte)(unsafe.Pointer(&table[0][0])), 3*256*4)); err != nil {
		u.Close()
		return nil, err
	}
	return u, nil
}

// ImageBytes is the size of one image in a slot.
func (u *ImageUploader) ImageBytes() int { return u.size * u.size * 3 }

// Next returns the host buffer of the next slot to fill: image i at
// [i*ImageBytes(), (i+1)*ImageBytes()). It waits, if need be, until the GPU
// has finished reading what the slot held before.
func (u *ImageUploader) Next() ([]byte, error) {
	if u.filling >= 0 {
		return nil, fmt.Errorf("cuda: ImageUploader.Next twice without Submit")
	}
	s := &u.slots[u.next]
	if s.inUse {
		if err := u.b.dv.EventSync(s.consumed); err != nil {
			return nil, err
		}
		s.inUse = false
	}
	u.filling = u.next
	u.next = (u.next + 1) % len(u.slots)
	return s.host, nil
}

// Submit queues the upload of the first n images of the slot Next returned
// and their normalisation into a new (n,3,S,S) tensor of the backend's
// precision (the caller frees it). Nothing on the host waits: ops queued on
// the tensor afterwards run after it, in stream order.
func (u *ImageUploader) Submit(n int) (t backend.Tensor, err error) {
	defer Recover(&err)
	if u.filling < 0 {
		return nil, fmt.Errorf("cuda: ImageUploader.Submit without Next")
	}
	if n <= 0 || n > u.maxBatch {
		return nil, fmt.Errorf("cuda: ImageUploader.Submit of %d images (1..%d)", n, u.maxBatch)
	}
	s := &u.slots[u.filling]
	u.filling = -1
	dv := u.b.dv
	// The copy stream must not overwrite dev before the last kernel that read it (stream order, no host wait).
	if err := dv.WaitEvent(u.copy, s.consumed); err != nil {
		return nil, err
	}
	if err := dv.CopyToDeviceAsync(s.dev, s.host[:n*u.ImageBytes()], u.copy); err != nil {
		return nil, err
	}
	if err := dv.Record(s.copied, u.copy); err != nil {
		return nil, err
	}
	if err := dv.WaitEvent(dv.Stream, s.copied); err != nil {
		return nil, err
	}
	out := u.b.scratch(n, 3, u.size, u.size)
	must(u.b.k.launchNormalizeU8(u.b.gridN(out.n), out.buf.Ptr, s.dev.Ptr, u.lut.Ptr, int32(n), int32(u.size)))
	if err := dv.Record(s.consumed, dv.Stream); err != nil {
		return nil, err
	}
	s.inUse = true
	return out, nil
}

// Close waits for the uploader's work and releases its memory and streams.
func (u *ImageUploader) Close() error {
	dv := u.b.dv
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if u.copy != 0 {
		keep(dv.SyncStream(u.copy))
	}
	keep(dv.Sync())
	for i := range u.slots {
		s := &u.slots[i]
		keep(dv.FreeHost(s.host))
		keep(dv.Free(s.dev))
		for _, e := range []Event{s.copied, s.consumed} {
			if e != 0 {
				keep(dv.DestroyEvent(e))
			}
		}
		*s = uploadSlot{}
	}
	keep(dv.Free(u.lut))
	u.lut = Buffer{}
	if u.copy != 0 {
		keep(dv.DestroyStream(u.copy))
		u.copy = 0
	}
	return first
}
