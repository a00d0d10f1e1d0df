package extract

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
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
}

// imageExts are the members tried for the image, in order.
var imageExts = [...]string{"jpg", "jpeg", "png", "webp"}

// decode reads s's image, label and caption and makes its views: view 0 is
// the eval transform, views 1.. random resized crops seeded by (key, view),
// so that every run makes the same ones. A problem sets s.reject instead.
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
