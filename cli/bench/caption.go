package bench

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/inat/synth"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/stages/caption"
)

// Caption times the caption stage on all cores over 500 px JPEGs (the size of
// iNat2021's images): original bytes passed through, and re-encoded with
// --max-size 256. References measured in the same run on the same files:
// reading every file and writing the bytes once (a copy: the ceiling of a
// pass-through), and decoding every JPEG on all cores, the part of a
// re-encode that no resize or encoder speed-up removes: with libjpeg-turbo's
// decode when it is installed (the stage uses it too), else with the
// standard library's image/jpeg.Decode, which the stage's pure-Go decoder
// runs plus a colour conversion. Both sides are the fastest of 3 runs.
var Caption = Bench{
	Name: "caption",
	Help: "caption stage images/s on all cores, 500px JPEGs: pass-through vs raw copy; --max-size 256 vs decode-only",
	Run:  runCaption,
}

const (
	captionImages  = 240
	captionRepeats = 3
)

func runCaption(ctx context.Context, emit func(Figure)) error {
	dir, err := os.MkdirTemp("", "litcache-bench-caption-")
	if err != nil {
		return fmt.Errorf("bench: caption: %w", err)
	}
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "data")
	if err := synth.Generate(data, synth.Options{Species: 12, TrainPerSpecies: captionImages / 12, ImageSize: 500, Seed: 1}); err != nil {
		return fmt.Errorf("bench: caption: %w", err)
	}
	ds, err := inat.LoadCOCO(filepath.Join(data, "train.json"), inat.COCOOptions{})
	if err != nil {
		return fmt.Errorf("bench: caption: %w", err)
	}
	paths := make([]string, len(ds.Images))
	var total int64
	for i, im := range ds.Images {
		paths[i] = filepath.Join(data, im.FileName)
		st, err := os.Stat(paths[i])
		if err != nil {
			return fmt.Errorf("bench: caption: %w", err)
		}
		total += st.Size()
	}
	n := float64(len(paths))
	cores := runtime.GOMAXPROCS(0)
	dec, decode := "image/jpeg", func(b []byte) error { _, err := jpeg.Decode(bytes.NewReader(b)); return err }
	if _, ok := imageproc.TurboJPEG(); ok {
		dec, decode = "libjpeg-turbo", func(b []byte) error { _, err := imageproc.DecodeRGB(b); return err }
	}
	note := fmt.Sprintf("%d synthetic 500px JPEGs, %d KB mean, %d cores, decode %s", len(paths), total/int64(len(paths))/1024, cores, dec)

	// Reference 1: read every file and write its bytes into one file.
	copyRate, err := timed(n, func() error { return copyAll(paths, filepath.Join(dir, "copy.bin")) })
	if err != nil {
		return err
	}
	run := func(name string, maxSize int) (float64, error) {
		cfg := caption.DefaultConfig()
		cfg.JSON = filepath.Join(data, "train.json")
		cfg.Images = data
		cfg.PerShard = captionImages // one shard, one fsync, as the copy has
		cfg.MaxSize = maxSize
		cfg.Progress = progress.Options{Quiet: true}
		cfg.Log = io.Discard
		runs := 0
		return timed(n, func() error {
			runs++ // a fresh folder each time: the stage would keep a complete shard
			cfg.Out = filepath.Join(dir, fmt.Sprintf("%s-%d", name, runs))
			_, err := caption.Run(ctx, cfg)
			return err
		})
	}
	// The first caption runs warm the page cache for both references.
	if _, err := run("warm", 0); err != nil {
		return err
	}
	pass, err := run("pass", 0)
	if err != nil {
		return err
	}
	emit(Figure{Name: "caption/500px/pass-through", Value: pass, Unit: "img/s", RefName: "raw copy (ceiling)", Ref: copyRate,
		HigherIsBetter: true, Note: note})

	// Reference 2: decode every JPEG on all cores, nothing else.
	decodeRate, err := timed(n, func() error { return decodeAll(paths, cores, decode) })
	if err != nil {
		return err
	}
	re, err := run("reencode", 256)
	if err != nil {
		return err
	}
	emit(Figure{Name: "caption/500px/max-size-256", Value: re, Unit: "img/s", RefName: "decode only (" + dec + ", ceiling)", Ref: decodeRate,
		HigherIsBetter: true, Note: note + ", bicubic + image/jpeg q90"})
	return nil
}

// timed runs f captionRepeats times and returns n/seconds of the fastest
// run: the figures are rates of work, and a shared machine only ever slows
// a run down.
func timed(n float64, f func() error) (float64, error) {
	best := 0.0
	for r := 0; r < captionRepeats; r++ {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		best = max(best, n/time.Since(start).Seconds())
	}
	return best, nil
}

func copyAll(paths []string, dst string) error {
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("bench: caption: %w", err)
	}
	defer out.Close()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("bench: caption: %w", err)
		}
		if _, err := out.Write(b); err != nil {
			return fmt.Errorf("bench: caption: %w", err)
		}
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("bench: caption: %w", err)
	}
	return nil
}

func decodeAll(paths []string, workers int, decode func([]byte) error) error {
	ch := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range ch {
				b, err := os.ReadFile(p)
				if err == nil {
					err = decode(b)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("bench: caption: %s: %w", p, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range paths {
		ch <- p
	}
	close(ch)
	wg.Wait()
	return first
}
