package extract

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/wds"
)

// decodePool is the decode stage: threads goroutines take samples from in,
// decode and preprocess each with decode, and send it on out, in whatever
// order they finish (the batcher restores the shard order). busy sums the
// nanoseconds spent in decode over all goroutines. It closes out when in is
// drained or ctx ends.
func decodePool(ctx context.Context, threads int, decode func(*sample), in <-chan *sample, out chan<- *sample, busy *atomic.Int64) error {
	defer close(out)
	var wg sync.WaitGroup
	for range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range in {
				t0 := time.Now()
				if s.member == nil { // a member left out needs no decoding
					decode(s)
				}
				busy.Add(int64(time.Since(t0)))
				select {
				case out <- s:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// decoder turns a sample's members into its label, caption and views.
type decoder struct {
	pre   imageproc.Preprocessor
	views int
	// out is the form of the views: float32 tensors for the host tower, or
	// for the GPU paths uint8 images (decodeUpload) or the JPEG itself with
	// its views' resize plans (decodeNVJPEG; what it cannot take, the CPU
	// decodes into uint8 images).
	out decodeMode
}

// imageExts are the members tried for the image, in order.
var imageExts = [...]string{"jpg", "jpeg", "png", "webp"}

// decode reads s's image, label and caption and makes its views: view 0 is
// the eval transform, views 1.. random resized crops seeded by (key, view),
// so that every run makes the same ones. A problem sets s.reject instead.
// On the GPU decode path it only screens the image and plans its views; the
// GPU stage (gpu.go) decodes it.
func (d decoder) decode(s *sample) {
	raw := s.raw
	s.raw = nil
	s.key = raw.Key
	var data []byte
	found := false
	for _, ext := range imageExts {
		if b, ok := raw.Files[ext]; ok {
			data, found = b, true
			break
		}
	}
	if !found {
		s.reject = "no image member (.jpg, .jpeg, .png or .webp)"
		return
	}
	if len(data) == 0 {
		s.reject = "image member is empty (0 bytes)"
		return
	}
	label, err := labelOf(raw)
	if err != nil {
		s.reject = err.Error()
		return
	}
	s.label = label
	s.caption = strings.TrimSpace(string(raw.Files["txt"]))
	switch d.out {
	case decodeNVJPEG:
		w, h, why := gpuDecodable(data)
		if why == "" {
			s.gpu = &gpuImage{data: data, plans: d.plans(raw.Key, w, h)}
			return
		}
		s.fallback = why
		fallthrough
	case decodeUpload:
		if s.u8, err = d.resized(raw.Key, data); err != nil {
			s.reject = "decode: " + err.Error()
		}
	default:
		img, err := imageproc.DecodeRGB(data)
		if err != nil {
			s.reject = "decode: " + err.Error()
			return
		}
		s.views = make([][]float32, d.views)
		s.views[0] = d.pre.Transform(img, nil)
		for v := 1; v < d.views; v++ {
			s.views[v] = d.pre.TransformRandom(img, viewRNG(raw.Key, v), nil)
		}
	}
}

// resized decodes data on the CPU and makes its views as uint8 S×S×3
// images (the eval transform's and the random resized crops' bytes before
// normalisation, which the GPU does).
func (d decoder) resized(key string, data []byte) ([][]byte, error) {
	img, err := imageproc.DecodeRGB(data)
	if err != nil {
		return nil, err
	}
	views := make([][]byte, d.views)
	views[0] = d.pre.Resized(img).Pix
	for v := 1; v < d.views; v++ {
		views[v] = d.pre.RandomResized(img, viewRNG(key, v)).Pix
	}
	return views, nil
}

// plans are the resize plans of a w×h image's views for the GPU: the eval
// transform's, then the random resized crops drawn from the same seeds as
// on the CPU (viewRNG), so that both paths make the same views.
func (d decoder) plans(key string, w, h int) []imageproc.ResizePlan {
	pl := make([]imageproc.ResizePlan, d.views)
	pl[0] = d.pre.Plan(w, h)
	for v := 1; v < d.views; v++ {
		pl[v] = d.pre.PlanRandom(w, h, viewRNG(key, v))
	}
	return pl
}

// gpuDecodable says whether an image goes to nvJPEG, and when not, why (the
// CPU decodes it instead): a JPEG of 1 (grey) or 3 (YCbCr) components that
// ends with its EOI marker and is within the CPU decoder's size limits.
// Everything else — PNG, CMYK/YCCK or RGB JPEGs, a JPEG cut short (which
// the CPU rejects where nvJPEG might pad it), one whose header image/jpeg
// cannot read (arithmetic coding, 12-bit) — takes the CPU path, which
// decides as it always does. It reads the header only, and by the image's
// bytes alone: every run sends the same images to the same decoder.
func gpuDecodable(data []byte) (w, h int, why string) {
	if imageproc.Format(data) != "jpeg" {
		if f := imageproc.Format(data); f != "" {
			return 0, 0, strings.ToUpper(f)
		}
		return 0, 0, "not a JPEG"
	}
	if !bytes.HasSuffix(data, []byte{0xff, 0xd9}) {
		return 0, 0, "JPEG without its end marker"
	}
	c, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return 0, 0, "JPEG header image/jpeg cannot read"
	}
	switch c.ColorModel {
	case color.YCbCrModel, color.GrayModel:
	case color.CMYKModel:
		return 0, 0, "CMYK/YCCK JPEG"
	default:
		return 0, 0, "JPEG of another colour model"
	}
	lim := imageproc.DefaultLimits()
	if c.Width <= 0 || c.Height <= 0 || c.Width > lim.MaxSide || c.Height > lim.MaxSide || c.Width*c.Height > lim.MaxPixels {
		return 0, 0, "JPEG over the size limits"
	}
	return c.Width, c.Height, ""
}

// viewRNG is the random source of view v (≥ 1) of the sample with this key.
func viewRNG(key string, v int) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(key))
	return rand.New(rand.NewPCG(h.Sum64(), uint64(v)))
}

// labelOf reads the label from .cls (decimal text), else from .json's
// category_id, else -1.
func labelOf(s *wds.Sample) (int32, error) {
	if b, ok := s.Files["cls"]; ok {
		t := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(t, 10, 32)
		if err != nil {
			return 0, fmt.Errorf(".cls %q is not an integer label", truncate(t, 40))
		}
		return int32(n), nil
	}
	if b, ok := s.Files["json"]; ok {
		var meta struct {
			CategoryID *int32 `json:"category_id"`
		}
		if err := json.Unmarshal(b, &meta); err == nil && meta.CategoryID != nil {
			return *meta.CategoryID, nil
		}
	}
	return -1, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
