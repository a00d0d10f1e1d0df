package extract

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
)

// The input stage of the GPU paths (issue 10): between the batcher and the
// tower, one goroutine turns each batch's views into the tower's input on
// the device while the tower runs the batch before, so that host work
// (copying into pinned memory, nvJPEG's Huffman decoding) overlaps the GPU:
//
//	decodeUpload  the CPU decoded and resized each view (uint8); they are
//	              copied into the uploader's pinned double-buffered slot and
//	              sent on its copy stream; the GPU normalises them to bf16
//	decodeNVJPEG  nvJPEG decodes the batch's JPEGs on the GPU, the resize
//	              kernels make every view from imageproc's plans (eval and
//	              random resized crops alike), CPU-made views of the images
//	              nvJPEG does not take are copied in between; the GPU
//	              normalises the batch
//
// The host path (the CPU backend) has no input stage: its float32 views go
// to the tower as they are.

// gpuImage is a JPEG the GPU decodes, with the resize plan of each view.
type gpuImage struct {
	data  []byte
	plans []imageproc.ResizePlan
}

// inputMaker makes a batch's input tensor on the device.
type inputMaker interface {
	// make returns the (b.rows,3,S,S) tensor of b's kept samples' views, in
	// order. It may reject samples (a JPEG both nvJPEG and the CPU refuse),
	// lowering b.rows; with no rows left it returns nil.
	make(b *batch) (backend.Tensor, error)
	// free releases a tensor from make that the tower never took.
	free(t backend.Tensor)
}

// inputStage is the input stage: it makes each batch's device input (make)
// and passes the batch on, in order; batches without rows pass untouched.
// busy sums the time inside make. It closes out when it returns.
func inputStage(ctx context.Context, m inputMaker, in <-chan *batch, out chan<- *batch, busy *time.Duration) error {
	defer close(out)
	for b := range in {
		if err := ctx.Err(); err != nil {
			return err
		}
		if b.rows > 0 {
			t0 := time.Now()
			dev, err := m.make(b)
			*busy += time.Since(t0)
			if err != nil {
				return err
			}
			b.dev, b.devFree = dev, m.free
		}
		select {
		case out <- b:
		case <-ctx.Done():
			b.dropDevice()
			return ctx.Err()
		}
	}
	return ctx.Err()
}

// uploader is the host↔device pipeline as the upload input sees it:
// cuda.ImageUploader, or a fake in the tests.
type uploader interface {
	// Next returns the next slot's host buffer to fill, once the device has
	// read what it held before.
	Next() ([]byte, error)
	// Submit queues the slot's first n images' upload and normalisation and
	// returns their (n,3,S,S) tensor.
	Submit(n int) (backend.Tensor, error)
	// ImageBytes is one image's size in a slot.
	ImageBytes() int
}

// uploadInput is the decodeUpload input: the CPU-made uint8 views through
// the uploader's pinned double buffer.
type uploadInput struct {
	u       uploader
	release func(backend.Tensor) // frees a tensor from Submit (the backend's Free)
}

func (in uploadInput) make(b *batch) (backend.Tensor, error) {
	host, err := in.u.Next()
	if err != nil {
		return nil, err
	}
	n, size := 0, in.u.ImageBytes()
	for _, s := range b.samples {
		if s.reject != "" {
			continue
		}
		for _, v := range s.u8 {
			if len(v) != size || (n+1)*size > len(host) {
				return nil, fmt.Errorf("extract: view %d of %s: %d bytes for a slot of %d-byte images (%d bytes)", n, s.key, len(v), size, len(host))
			}
			copy(host[n*size:], v)
			n++
		}
		s.u8 = nil
	}
	if n != b.rows {
		return nil, fmt.Errorf("extract: batch of %d rows has %d uint8 views", b.rows, n)
	}
	return in.u.Submit(n)
}

func (in uploadInput) free(t backend.Tensor) { in.release(t) }

// nvjpegInput is the decodeNVJPEG input.
type nvjpegInput struct {
	d   *cuda.JPEGDecoder
	ib  *cuda.ImageBatch
	be  backend.Backend
	cpu decoder // the CPU decoder of the images nvJPEG refuses (out: decodeUpload)
}

func (in nvjpegInput) make(b *batch) (backend.Tensor, error) {
	var jpegs [][]byte
	var owners []*sample
	for _, s := range b.samples {
		if s.reject == "" && s.gpu != nil {
			jpegs = append(jpegs, s.gpu.data)
			owners = append(owners, s)
		}
	}
	imgs, errs, err := in.d.DecodeAll(jpegs)
	if err != nil {
		return nil, err
	}
	dev := map[*sample]cuda.DeviceImage{}
	for i, s := range owners {
		if errs[i] == nil {
			dev[s] = imgs[i]
			continue
		}
		// nvJPEG refused what the screening let through: the CPU decides.
		s.fallback = "nvJPEG: " + nvjpegReason(errs[i])
		if s.u8, err = in.cpu.resized(s.key, s.gpu.data); err != nil {
			s.reject = "decode: " + err.Error()
			b.rows -= len(s.gpu.plans)
		}
		s.gpu = nil
	}
	if b.rows == 0 {
		return nil, nil
	}
	for _, s := range b.samples {
		if s.reject != "" {
			continue
		}
		if s.gpu != nil {
			for _, pl := range s.gpu.plans {
				if err := in.ib.AddPlan(dev[s], pl); err != nil {
					return nil, err
				}
			}
			s.gpu = nil
			continue
		}
		for _, v := range s.u8 {
			if err := in.ib.AddHost(v); err != nil {
				return nil, err
			}
		}
		s.u8 = nil
	}
	if n := in.ib.Len(); n != b.rows {
		return nil, fmt.Errorf("extract: batch of %d rows has %d views on the GPU", b.rows, n)
	}
	return in.ib.Tensor()
}

func (in nvjpegInput) free(t backend.Tensor) { in.be.Free(t) }

// nvjpegReason is the short form of nvJPEG's refusal: its status name.
func nvjpegReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "NVJPEG_STATUS_"); i >= 0 {
		return strings.Fields(msg[i:])[0]
	}
	if errors.Is(err, cuda.ErrJPEGUnsupported) {
		return strings.TrimPrefix(msg, cuda.ErrJPEGUnsupported.Error()+": ")
	}
	return msg
}
