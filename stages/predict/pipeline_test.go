package predict_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/stages/bundle"
	"github.com/litcache/litcache/stages/predict"
)

// fake is a classifier whose "photos" are files holding their own number:
// Prepare sleeps a random while (so decoders finish out of order) and
// returns the number as the only pixel; Top names the prediction after it.
// It records the largest batch and the most photos prepared but not yet
// written.
type fake struct {
	mu       sync.Mutex
	rng      *rand.Rand
	inFlight atomic.Int64
	maxIn    atomic.Int64
	maxBatch atomic.Int64
	batches  atomic.Int64
	fail     map[int]bool // numbers whose Prepare fails
	block    chan struct{}
	// deviceErr, when set, is what Probabilities fails with (a GPU op failing).
	deviceErr error
}

func (f *fake) Prepare(data []byte, _ imageproc.Limits) ([]float32, error) {
	n, err := strconv.Atoi(string(data))
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	d := time.Duration(f.rng.IntN(300)) * time.Microsecond
	f.mu.Unlock()
	time.Sleep(d)
	if f.fail[n] {
		return nil, fmt.Errorf("photo %d is broken", n)
	}
	in := f.inFlight.Add(1)
	for {
		m := f.maxIn.Load()
		if in <= m || f.maxIn.CompareAndSwap(m, in) {
			break
		}
	}
	return []float32{float32(n)}, nil
}

func (f *fake) Probabilities(px []float32, n int) ([]float32, error) {
	if f.block != nil {
		<-f.block
	}
	if f.deviceErr != nil {
		return nil, f.deviceErr
	}
	f.batches.Add(1)
	for {
		m := f.maxBatch.Load()
		if int64(n) <= m || f.maxBatch.CompareAndSwap(m, int64(n)) {
			break
		}
	}
	return append([]float32(nil), px...), nil // K = 1: the number itself
}

func (f *fake) Top(probs []float32, k int, rank string) ([]bundle.Prediction, error) {
	return []bundle.Prediction{{Name: strconv.Itoa(int(probs[0])), Score: 1}}, nil
}

func numberedFiles(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%05d.jpg", i)), []byte(strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// rowsOut parses the JSON rows as they are written and releases the fake's in-flight count.
type rowsOut struct {
	f    *fake
	rows []string
	buf  strings.Builder
	slow time.Duration // per write: a writer slower than the rest backs the pipeline up
}

func (r *rowsOut) Write(p []byte) (int, error) {
	time.Sleep(r.slow)
	r.buf.Write(p)
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		line = strings.TrimPrefix(strings.TrimPrefix(line, "["), ",")
		line = strings.TrimSpace(line)
		if line == "" || line == "]" {
			continue
		}
		var jr predict.JSONRow
		if err := json.Unmarshal([]byte(line), &jr); err != nil {
			return 0, err
		}
		if jr.Error == "" {
			r.f.inFlight.Add(-1)
			r.rows = append(r.rows, jr.Predictions[0].Name)
		} else {
			r.rows = append(r.rows, "error")
		}
	}
	return len(p), nil
}

// Rows come out in input order whatever order decoding finishes in, no
// batch exceeds the batch size, and the photos prepared but not yet written
// stay within the pipeline's window however many photos there are.
func TestPipelineOrderAndBounds(t *testing.T) {
	const n, batch, threads = 400, 8, 6
	dir := numberedFiles(t, n)
	f := &fake{rng: rand.New(rand.NewPCG(1, 2)), fail: map[int]bool{7: true, 200: true}}
	out := &rowsOut{f: f, slow: 300 * time.Microsecond}
	cfg := predict.DefaultConfig()
	cfg.Paths, cfg.Format, cfg.BatchSize, cfg.Threads, cfg.Out = []string{dir}, predict.FormatJSON, batch, threads, out
	cfg.Progress.Quiet = true
	res, err := predict.RunWith(context.Background(), cfg, f, 8)
	if err != nil {
		t.Fatal(err)
	}
	if res.Photos != n || res.Failed != 2 || len(out.rows) != n {
		t.Fatalf("result %+v, %d rows", res, len(out.rows))
	}
	for i, r := range out.rows {
		want := strconv.Itoa(i)
		if f.fail[i] {
			want = "error"
		}
		if r != want {
			t.Fatalf("row %d is %s: out of order", i, r)
		}
	}
	if m := f.maxBatch.Load(); m > batch || m < 1 {
		t.Errorf("largest batch %d, batch size %d", m, batch)
	}
	// The window is 2·batch + 2·threads photos between feeder and writer;
	// the writer frees a place just before writing, so one more photo may
	// be prepared while the row is written. Measured 29 of 28+1; with no
	// window (only the channels' capacities) 39.
	if m, w := f.maxIn.Load(), int64(2*batch+2*threads); m > w+1 {
		t.Errorf("%d photos prepared and unwritten at once, window %d", m, w)
	}
	t.Logf("%d batches for %d photos, largest %d, most in flight %d", f.batches.Load(), n, f.maxBatch.Load(), f.maxIn.Load())
}

// A slow tower fills its batches: decoding runs ahead while it works.
func TestPipelineFillsBatchesBehindASlowTower(t *testing.T) {
	const n, batch = 64, 8
	dir := numberedFiles(t, n)
	block := make(chan struct{})
	f := &fake{rng: rand.New(rand.NewPCG(3, 4)), block: block}
	go func() {
		for range n {
			time.Sleep(5 * time.Millisecond)
			block <- struct{}{}
		}
	}()
	cfg := predict.DefaultConfig()
	cfg.Paths, cfg.Format, cfg.BatchSize, cfg.Threads, cfg.Out = []string{dir}, predict.FormatJSON, batch, 4, &rowsOut{f: f}
	cfg.Progress.Quiet = true
	if _, err := predict.RunWith(context.Background(), cfg, f, 8); err != nil {
		t.Fatal(err)
	}
	// 64 photos in batches of 8 while each call waits 5 ms: most batches full.
	if b := f.batches.Load(); b > n/batch+4 {
		t.Errorf("%d tower calls for %d photos in batches of %d", b, n, batch)
	}
}

// Cancelling stops the run with the context's error.
func TestPipelineCancel(t *testing.T) {
	dir := numberedFiles(t, 200)
	block := make(chan struct{})
	f := &fake{rng: rand.New(rand.NewPCG(5, 6)), block: block}
	ctx, cancel := context.WithCancel(context.Background())
	cfg := predict.DefaultConfig()
	cfg.Paths, cfg.Format, cfg.Out = []string{dir}, predict.FormatJSON, &rowsOut{f: f}
	cfg.Progress.Quiet = true
	done := make(chan error)
	go func() {
		_, err := predict.RunWith(ctx, cfg, f, 8)
		done <- err
	}()
	block <- struct{}{} // one batch through
	cancel()
	close(block) // let a tower call in progress return
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not stop after cancel")
	}
}

// A device error from the tower (a GPU op failing) stops the run with that
// error: it is no photo's fault, and every later batch would fail too.
func TestPipelineDeviceErrorStops(t *testing.T) {
	dir := numberedFiles(t, 40)
	devErr := errors.New("cuda: cuLaunchKernel: CUDA_ERROR_LAUNCH_FAILED (719)")
	f := &fake{rng: rand.New(rand.NewPCG(7, 8)), deviceErr: devErr}
	cfg := predict.DefaultConfig()
	cfg.Paths, cfg.Format, cfg.Out = []string{dir}, predict.FormatJSON, &rowsOut{f: f}
	cfg.Progress.Quiet = true
	_, err := predict.RunWith(context.Background(), cfg, f, 8)
	if !errors.Is(err, devErr) || !strings.Contains(err.Error(), "image tower") {
		t.Fatalf("error %v, want the device error", err)
	}
}
