package bench

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/stages/extract"
	"github.com/litcache/litcache/store"

	"github.com/litcache/litcache/internal/half"
)

// CacheOptions size the "cache" benchmark.
type CacheOptions struct {
	// ReadRows × ReadDim is the embedding matrix read back (one part each for
	// float16 and float32).
	ReadRows, ReadDim int
	// IndexKeys is the number of keys indexed (iNat2021 train: 2.7M).
	IndexKeys int
	// ExtractImages per tower shape (clip-tiny, ViT-B-16).
	TinyImages, B16Images int
}

// Cache measures the embedding cache and the extract stage:
//   - reading a part's embedding matrix through the zero-copy mmap reader
//     (sum of every value), against os.ReadFile of the same bytes plus the
//     same sum, in the same run, page cache warm for both;
//   - building the Badger index over IndexKeys keys, against sorting the
//     same keys in memory (the work any index build must do), one run each;
//   - random lookups through the index, against the same lookups in a Go
//     map (the in-memory ceiling);
//   - extraction images/s on synthetic 500×375 JPEGs with random towers of
//     clip-tiny and ViT-B/16 shapes (the pipeline's time, without opening
//     the cache and building the tower), against the ablation
//     decode+preprocess alone on the same cores, one run each; the note
//     gives the share of busy time in decode vs tower.
var Cache = Bench{
	Name: "cache",
	Help: "cache read GB/s (mmap vs ReadFile), index build for 2.7M keys vs a sort, lookups vs a Go map, extraction images/s (clip-tiny, ViT-B/16) vs the decode-only ablation",
	Run:  CacheOptions{ReadRows: 65536, ReadDim: 768, IndexKeys: 2_700_000, TinyImages: 512, B16Images: 24}.Run,
}

// Run emits the figures.
func (o CacheOptions) Run(ctx context.Context, emit func(Figure)) error {
	root, err := os.MkdirTemp("", "litcache-bench-cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	if err := o.read(root, emit); err != nil {
		return err
	}
	if err := o.index(root, emit); err != nil {
		return err
	}
	return o.extract(ctx, root, emit)
}

func (o CacheOptions) read(root string, emit func(Figure)) error {
	for _, dtype := range []string{store.Float16, store.Float32} {
		dir := filepath.Join(root, "read-"+dtype)
		c, err := store.Create(dir, store.Manifest{Fingerprint: "bench", Model: "bench", Dim: o.ReadDim, DType: dtype, Views: 1})
		if err != nil {
			return err
		}
		w, err := c.NewPart("bench.p0", "bench", "p0.tar")
		if err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(1, 2))
		emb := make([]float32, o.ReadDim)
		for i := 0; i < o.ReadRows; i++ {
			for j := range emb {
				emb[j] = float32(rng.NormFloat64()) * 0.05
			}
			if err := w.Add(fmt.Sprintf("k%08d", i), int32(i%10000), 0, "c", emb); err != nil {
				return err
			}
		}
		if _, err := w.Commit(0, 1, nil); err != nil {
			return err
		}
		path := filepath.Join(dir, "parts", "bench.p0.arrow")
		os.ReadFile(path) // warm the page cache for both readers

		runtime.GC() // no collection of earlier garbage inside the timings
		var mmapBest, readBest time.Duration
		var bytesN int
		var s1, s2 float64
		for rep := 0; rep < 5; rep++ {
			t0 := time.Now()
			r, err := store.Open(dir, store.ReadOptions{})
			if err != nil {
				return err
			}
			p := r.Parts()[0]
			if dtype == store.Float16 {
				s1 = sumF16(p.EmbF16())
				bytesN = 2 * len(p.EmbF16())
			} else {
				s1 = sumF32(p.EmbF32())
				bytesN = 4 * len(p.EmbF32())
			}
			r.Close()
			if d := time.Since(t0); rep == 0 || d < mmapBest {
				mmapBest = d
			}

			t0 = time.Now()
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			// The matrix is the last bytesN bytes before the footer; summing
			// the same count of values from the file's start does the same work.
			n := bytesN
			if n > len(b) {
				n = len(b) &^ 3
			}
			if dtype == store.Float16 {
				s2 = sumF16(unsafeU16(b[:n]))
			} else {
				s2 = sumF32(unsafeF32(b[:n]))
			}
			if d := time.Since(t0); rep == 0 || d < readBest {
				readBest = d
			}
		}
		_ = s2
		gb := float64(bytesN) / 1e9
		emit(Figure{
			Name: fmt.Sprintf("cache/read/%s/%dx%d", dtype, o.ReadRows, o.ReadDim), Value: gb / mmapBest.Seconds(), Unit: "GB/s",
			RefName: "os.ReadFile + same sum", Ref: gb / readBest.Seconds(), HigherIsBetter: true,
			Note: fmt.Sprintf("open+mmap+sum of %.0f MB (sum %.3g), best of 5", float64(bytesN)/1e6, s1),
		})
	}
	return nil
}

func sumF32(x []float32) float64 {
	var a, b, c, d float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a += x[i]
		b += x[i+1]
		c += x[i+2]
		d += x[i+3]
	}
	for ; i < len(x); i++ {
		a += x[i]
	}
	return float64(a + b + c + d)
}

// sumF16 converts in row-sized chunks, as a reader of float16 rows does
// (half.F16ToF32s), and sums them like sumF32.
func sumF16(x []uint16) float64 {
	var buf [768]float32
	var s float64
	for len(x) > 0 {
		n := min(len(x), len(buf))
		s += sumF32(half.F16ToF32s(buf[:n], x[:n]))
		x = x[n:]
	}
	return s
}

func (o CacheOptions) index(root string, emit func(Figure)) error {
	dir := filepath.Join(root, "index")
	c, err := store.Create(dir, store.Manifest{Fingerprint: "bench", Model: "bench", Dim: 4, DType: store.Float16, Views: 1})
	if err != nil {
		return err
	}
	const perPart = 100_000
	keys := make([]string, 0, o.IndexKeys)
	emb := []float32{0.5, -0.5, 0.25, 0}
	for p := 0; p*perPart < o.IndexKeys; p++ {
		w, err := c.NewPart(fmt.Sprintf("train.%06d", p), "train", fmt.Sprintf("%06d.tar", p))
		if err != nil {
			return err
		}
		for i := p * perPart; i < min((p+1)*perPart, o.IndexKeys); i++ {
			// iNat-like keys: a 9-digit image id, shuffled across parts.
			k := fmt.Sprintf("%09d", uint32(i)*2654435761%1_000_000_000)
			keys = append(keys, k)
			if err := w.Add(k, int32(i%10000), 0, "c", emb); err != nil {
				return err
			}
		}
		if _, err := w.Commit(0, 1, nil); err != nil {
			return err
		}
	}
	runtime.GC()
	st, err := store.BuildIndex(dir, store.IndexOptions{})
	if err != nil {
		return err
	}
	runtime.GC()
	t0 := time.Now()
	sort.Strings(keys)
	sortTime := time.Since(t0)
	emit(Figure{
		Name: fmt.Sprintf("cache/index/build/%dkeys", o.IndexKeys), Value: st.Elapsed.Seconds(), Unit: "s",
		RefName: "in-memory sort of the keys", Ref: sortTime.Seconds(), HigherIsBetter: false,
		Note: fmt.Sprintf("%d parts; index/ %.1f MB = %.1f B/key", st.Parts, float64(st.Bytes)/1e6, float64(st.Bytes)/float64(st.Keys)),
	})
	// Lookups through the read-only index.
	r, err := store.Open(dir, store.ReadOptions{})
	if err != nil {
		return err
	}
	defer r.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	const lookups = 20000
	t0 = time.Now()
	for i := 0; i < lookups; i++ {
		if _, err := r.Lookup(keys[rng.IntN(len(keys))]); err != nil {
			return err
		}
	}
	badgerRate := lookups / time.Since(t0).Seconds()
	// Reference: the same lookups in a Go map from key to (part, row), the
	// in-memory ceiling of any index.
	inMemory := make(map[string][2]int32, len(keys))
	for i, k := range keys {
		inMemory[k] = [2]int32{int32(i / perPart), int32(i % perPart)}
	}
	rng = rand.New(rand.NewPCG(3, 4))
	var sink int32
	t0 = time.Now()
	for i := 0; i < lookups; i++ {
		sink += inMemory[keys[rng.IntN(len(keys))]][1]
	}
	mapRate := lookups / time.Since(t0).Seconds()
	emit(Figure{Name: "cache/index/lookup", Value: badgerRate, Unit: "keys/s", RefName: "Go map of the same keys (in-memory ceiling)", Ref: mapRate, HigherIsBetter: true,
		Note: fmt.Sprintf("%d random keys, one goroutine, read-only Badger", lookups)})
	_ = sink
	return nil
}

func (o CacheOptions) extract(ctx context.Context, root string, emit func(Figure)) error {
	src := imageproc.TestPattern(500, 375, 1)
	jpg, err := imageproc.EncodeJPEG(src, 90)
	if err != nil {
		return err
	}
	for _, tc := range []struct {
		model string
		n     int
		batch int
	}{{"clip-tiny", o.TinyImages, 64}, {"ViT-B-16", o.B16Images, 8}} {
		shard := filepath.Join(root, "shard-"+tc.model+".tar")
		if err := writeBenchShard(shard, jpg, tc.n); err != nil {
			return err
		}
		// Reference: decode + preprocess alone on all cores.
		cfgS := 224
		if tc.model == "clip-tiny" {
			cfgS = 32
		}
		pre := imageproc.CLIPPreprocessor(cfgS)
		runtime.GC()
		t0 := time.Now()
		workers := runtime.GOMAXPROCS(0)
		done := make(chan error, workers)
		for w := 0; w < workers; w++ {
			go func(w int) {
				dst := make([]float32, 3*cfgS*cfgS)
				for i := w; i < tc.n; i += workers {
					img, err := imageproc.DecodeRGB(jpg)
					if err != nil {
						done <- err
						return
					}
					pre.Transform(img, dst)
				}
				done <- nil
			}(w)
		}
		for w := 0; w < workers; w++ {
			if err := <-done; err != nil {
				return err
			}
		}
		decodeRate := float64(tc.n) / time.Since(t0).Seconds()

		cfg := extract.DefaultConfig()
		cfg.Shards = []string{shard}
		cfg.ModelConfig = tc.model
		cfg.Cache = filepath.Join(root, "cache-"+tc.model)
		cfg.BatchSize = tc.batch
		cfg.Progress = progress.Options{Quiet: true}
		cfg.Log = io.Discard
		runtime.GC()
		res, err := extract.Run(ctx, cfg)
		if err != nil {
			return err
		}
		share := res.DecodeSeconds / (res.DecodeSeconds + res.TowerSeconds*float64(workers))
		emit(Figure{
			Name: "cache/extract/" + tc.model, Value: float64(res.Samples) / res.PipelineSeconds, Unit: "img/s",
			RefName: "ablation: decode+preprocess alone (no tower, no writer)", Ref: decodeRate, HigherIsBetter: true,
			Note: fmt.Sprintf("%d imgs 500×375, %d cores, one run each side, pipeline time (cache and tower set-up excluded); busy: decode %.2fs (summed over decoders), tower %.2fs wall → decode share %.0f%% of core-seconds",
				tc.n, workers, res.DecodeSeconds, res.TowerSeconds, 100*share),
		})
	}
	return nil
}

func writeBenchShard(path string, jpg []byte, n int) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < n; i++ {
		for _, m := range []struct {
			ext  string
			data []byte
		}{{"jpg", jpg}, {"txt", []byte("a photo of a bench")}, {"cls", []byte("1")}} {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%06d.%s", i, m.ext), Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg})
			tw.Write(m.data)
		}
	}
	tw.Close()
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
