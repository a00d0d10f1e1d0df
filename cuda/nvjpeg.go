package cuda

import (
	"errors"
	"fmt"
	"sync"

	"github.com/litcache/litcache/internal/native"
)

var nvjpegSpec = native.Spec{
	Name:    "nvjpeg",
	Sonames: []string{"libnvjpeg.so.13", "libnvjpeg.so.12", "libnvjpeg.so.11", "libnvjpeg.so"},
	Env:     []string{"LITCACHE_LIBNVJPEG"},
}

// nvJPEG enums (nvjpeg.h).
const (
	nvjpegOutputRGBI    = 5 // interleaved RGB
	nvjpegMaxComponent  = 4
	nvjpegStatusSuccess = 0
	nvjpegBadJPEG       = 3
	nvjpegNotSupported  = 4
)

// ErrJPEGUnsupported means nvJPEG cannot decode this JPEG (CMYK, an
// exotic sampling, a damaged stream): decode it on the CPU instead.
var ErrJPEGUnsupported = errors.New("cuda: nvJPEG cannot decode this image")

// NVJPEG holds the bound nvJPEG functions.
type NVJPEG struct {
	Lib *native.Library

	nvjpegCreateSimple            func(h *uintptr) int32
	nvjpegDestroy                 func(h uintptr) int32
	nvjpegJpegStateCreate         func(h uintptr, s *uintptr) int32
	nvjpegJpegStateDestroy        func(s uintptr) int32
	nvjpegGetImageInfo            func(h uintptr, data *byte, n uint64, comps *int32, sub *int32, w, hh *int32) int32
	nvjpegDecode                  func(h, s uintptr, data *byte, n uint64, format int32, dst *nvjpegImage, stream uintptr) int32
	nvjpegDecodeBatchedInitialize func(h, s uintptr, batch, threads int32, format int32) int32
	nvjpegDecodeBatched           func(h, s uintptr, data **byte, lengths *uint64, dst *nvjpegImage, stream uintptr) int32
	nvjpegGetProperty             func(prop int32, v *int32) int32
}

// nvjpegImage is nvjpegImage_t: per-channel device pointers and pitches
// (RGBI uses channel 0 only).
type nvjpegImage struct {
	channel [nvjpegMaxComponent]uintptr
	pitch   [nvjpegMaxComponent]uint64
}

var (
	nvjpegOnce sync.Once
	nvjpegLib  *NVJPEG
	nvjpegErr  error
)

// LoadNVJPEG binds nvJPEG of CUDA 13, 12 or 11 (no GPU needed to bind).
func LoadNVJPEG() (*NVJPEG, error) {
	nvjpegOnce.Do(func() { nvjpegLib, nvjpegErr = loadNVJPEG() })
	return nvjpegLib, nvjpegErr
}

func loadNVJPEG() (*NVJPEG, error) {
	lib, err := native.Open(nvjpegSpec)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoNVJPEG, err)
	}
	n := &NVJPEG{Lib: lib}
	for _, b := range []struct {
		fn   any
		name string
	}{
		{&n.nvjpegCreateSimple, "nvjpegCreateSimple"},
		{&n.nvjpegDestroy, "nvjpegDestroy"},
		{&n.nvjpegJpegStateCreate, "nvjpegJpegStateCreate"},
		{&n.nvjpegJpegStateDestroy, "nvjpegJpegStateDestroy"},
		{&n.nvjpegGetImageInfo, "nvjpegGetImageInfo"},
		{&n.nvjpegDecode, "nvjpegDecode"},
		{&n.nvjpegDecodeBatchedInitialize, "nvjpegDecodeBatchedInitialize"},
		{&n.nvjpegDecodeBatched, "nvjpegDecodeBatched"},
		{&n.nvjpegGetProperty, "nvjpegGetProperty"},
	} {
		if err := lib.Bind(b.fn, b.name); err != nil {
			return nil, fmt.Errorf("cuda: %s: %w", lib.Path, err)
		}
	}
	return n, nil
}

// Version is nvJPEG's "MAJOR.MINOR.PATCH".
func (n *NVJPEG) Version() string {
	var v [3]int32
	for i := range v {
		n.nvjpegGetProperty(int32(i), &v[i]) // MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
	}
	return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2])
}

var nvjpegStatusNames = map[int32]string{1: "NOT_INITIALIZED", 2: "INVALID_PARAMETER", 3: "BAD_JPEG", 4: "JPEG_NOT_SUPPORTED",
	5: "ALLOCATOR_FAILURE", 6: "EXECUTION_FAILED", 7: "ARCH_MISMATCH", 8: "INTERNAL_ERROR", 9: "IMPLEMENTATION_NOT_SUPPORTED",
	10: "INCOMPLETE_BITSTREAM"}

func nvjpegCheck(s int32, call string) error {
	if s == nvjpegStatusSuccess {
		return nil
	}
	err := fmt.Errorf("cuda: %s: NVJPEG_STATUS_%s (%d)", call, nvjpegStatusNames[s], s)
	if s == nvjpegBadJPEG || s == nvjpegNotSupported || s == 10 {
		return fmt.Errorf("%w: %v", ErrJPEGUnsupported, err)
	}
	return err
}

// JPEGDecoder decodes JPEG bytes into interleaved RGB in device memory on
// the backend's compute stream (the --decode gpu path; nvJPEG's Huffman
// stage runs on the calling thread, the rest on the GPU). Its output feeds
// ImageBatch.Add and AddPlan. Use from one goroutine; make one per decoding
// goroutine.
type JPEGDecoder struct {
	b      *Backend
	nj     *NVJPEG
	handle uintptr
	state  uintptr
	rgb    Buffer // scratch for one image
}

// NewJPEGDecoder creates an nvJPEG handle and decoding state on b's GPU.
func (b *Backend) NewJPEGDecoder() (*JPEGDecoder, error) {
	nj, err := LoadNVJPEG()
	if err != nil {
		return nil, err
	}
	d := &JPEGDecoder{b: b, nj: nj}
	if err := b.dv.bind(); err != nil {
		return nil, err
	}
	defer b.dv.unbind()
	if err := nvjpegCheck(nj.nvjpegCreateSimple(&d.handle), "nvjpegCreateSimple"); err != nil {
		return nil, err
	}
	if err := nvjpegCheck(nj.nvjpegJpegStateCreate(d.handle, &d.state), "nvjpegJpegStateCreate"); err != nil {
		nj.nvjpegDestroy(d.handle)
		return nil, err
	}
	return d, nil
}

// Info returns a JPEG's width and height. A JPEG of other than 1 or 3
// components (CMYK, YCCK) is ErrJPEGUnsupported: nvJPEG has no RGB output
// for it.
func (d *JPEGDecoder) Info(data []byte) (w, h int, err error) {
	if len(data) == 0 {
		return 0, 0, fmt.Errorf("%w: empty data", ErrJPEGUnsupported)
	}
	var comps, sub int32
	var ws, hs [nvjpegMaxComponent]int32
	if err := d.b.dv.bind(); err != nil {
		return 0, 0, err
	}
	defer d.b.dv.unbind()
	if err := nvjpegCheck(d.nj.nvjpegGetImageInfo(d.handle, &data[0], uint64(len(data)), &comps, &sub, &ws[0], &hs[0]), "nvjpegGetImageInfo"); err != nil {
		return 0, 0, err
	}
	if comps != 1 && comps != 3 {
		return 0, 0, fmt.Errorf("%w: a JPEG of %d components", ErrJPEGUnsupported, comps)
	}
	if ws[0] <= 0 || hs[0] <= 0 {
		return 0, 0, fmt.Errorf("%w: header gives size %d×%d", ErrJPEGUnsupported, ws[0], hs[0])
	}
	return int(ws[0]), int(hs[0]), nil
}

// DecodeInto decodes data into dst (device memory, at least 3·w·h bytes,
// rows of 3·w bytes) on the compute stream.
func (d *JPEGDecoder) DecodeInto(data []byte, dst Buffer) (w, h int, err error) {
	if w, h, err = d.Info(data); err != nil {
		return 0, 0, err
	}
	if uint64(3*w*h) > dst.Bytes {
		return 0, 0, fmt.Errorf("cuda: %d×%d JPEG into a %d-byte buffer", w, h, dst.Bytes)
	}
	return w, h, d.decodeOne(data, DeviceImage{Ptr: dst.Ptr, Pitch: 3 * w, W: w, H: h})
}

func (d *JPEGDecoder) decodeOne(data []byte, img DeviceImage) error {
	dst := nvjpegImage{}
	dst.channel[0], dst.pitch[0] = img.Ptr, uint64(img.Pitch)
	if err := d.b.dv.bind(); err != nil {
		return err
	}
	defer d.b.dv.unbind()
	return nvjpegCheck(d.nj.nvjpegDecode(d.handle, d.state, &data[0], uint64(len(data)), nvjpegOutputRGBI, &dst, d.b.dv.Stream), "nvjpegDecode")
}

// DecodeAll decodes jpegs into device RGB on the compute stream, in one
// nvjpegDecodeBatched call (which keeps the GPU busy with several images at
// once): the GPU decode path's first step, before ImageBatch.AddPlan makes
// each image's views. errs[i], when not nil, says why nvJPEG cannot decode
// image i (it wraps ErrJPEGUnsupported: decode that one on the CPU); err is
// a failure of the device. The images live in the decoder's scratch, which
// the next DecodeAll reuses in stream order (after the queued reads).
func (d *JPEGDecoder) DecodeAll(jpegs [][]byte) (imgs []DeviceImage, errs []error, err error) {
	defer Recover(&err)
	imgs, errs = make([]DeviceImage, len(jpegs)), make([]error, len(jpegs))
	var ok []int
	total := 0
	for i, data := range jpegs {
		w, h, err := d.Info(data)
		if errors.Is(err, ErrJPEGUnsupported) {
			errs[i] = err
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		imgs[i] = DeviceImage{Ptr: uintptr(total), Pitch: 3 * w, W: w, H: h} // offset until the scratch is placed
		ok = append(ok, i)
		total += (3*w*h + 255) &^ 255
	}
	if len(ok) == 0 {
		return imgs, errs, nil
	}
	if uint64(total) > d.rgb.Bytes {
		if d.rgb.Ptr != 0 {
			d.b.release(d.rgb)
		}
		d.rgb = d.b.alloc(uint64(total))
	}
	for _, i := range ok {
		imgs[i].Ptr += d.rgb.Ptr
	}
	err = d.decodeBatched(jpegs, imgs, ok)
	if errors.Is(err, ErrJPEGUnsupported) {
		// One image spoilt the batch: decode them one by one to find it.
		for _, i := range ok {
			if e := d.decodeOne(jpegs[i], imgs[i]); errors.Is(e, ErrJPEGUnsupported) {
				errs[i] = e
			} else if e != nil {
				return nil, nil, e
			}
		}
		err = nil
	}
	if err != nil {
		return nil, nil, err
	}
	for i := range imgs {
		if errs[i] != nil {
			imgs[i] = DeviceImage{}
		}
	}
	return imgs, errs, nil
}

// decodeBatched decodes images ok of jpegs into imgs in one call.
func (d *JPEGDecoder) decodeBatched(jpegs [][]byte, imgs []DeviceImage, ok []int) error {
	data := make([]*byte, len(ok))
	lengths := make([]uint64, len(ok))
	dst := make([]nvjpegImage, len(ok))
	for k, i := range ok {
		data[k], lengths[k] = &jpegs[i][0], uint64(len(jpegs[i]))
		dst[k].channel[0], dst[k].pitch[0] = imgs[i].Ptr, uint64(imgs[i].Pitch)
	}
	if err := d.b.dv.bind(); err != nil {
		return err
	}
	defer d.b.dv.unbind()
	if err := nvjpegCheck(d.nj.nvjpegDecodeBatchedInitialize(d.handle, d.state, int32(len(ok)), 1, nvjpegOutputRGBI), "nvjpegDecodeBatchedInitialize"); err != nil {
		return err
	}
	return nvjpegCheck(d.nj.nvjpegDecodeBatched(d.handle, d.state, &data[0], &lengths[0], &dst[0], d.b.dv.Stream), "nvjpegDecodeBatched")
}

// Close releases the decoder (after the stream has run its work).
func (d *JPEGDecoder) Close() error {
	err := d.b.dv.Sync()
	if d.rgb.Ptr != 0 {
		d.b.release(d.rgb)
		d.rgb = Buffer{}
	}
	if e := d.b.dv.bind(); e != nil {
		return e
	}
	defer d.b.dv.unbind()
	if d.state != 0 {
		d.nj.nvjpegJpegStateDestroy(d.state)
		d.state = 0
	}
	if d.handle != 0 {
		d.nj.nvjpegDestroy(d.handle)
		d.handle = 0
	}
	return err
}
