package extract

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litcache/litcache/internal/backend"
)

// The GPU paths' pipeline with a fake uploader and a fake device tower. The
// fake decoder gives each view the four bytes [shard, seq, view, 1] as its
// uint8 image; the fake uploader's tensor does not copy its slot: like the
// GPU's copy and normalisation, it reads the slot's bytes only when the
// tower runs on it, and the slot is free for the next Next only after that.
// So a row that is not its own view's — a slot refilled early, a view
// copied to the wrong place, a batch sent out of order — shows in the rows,
// which checkRows compares with their keys.

// fakeDecodeU8 is fakeDecode for the upload path: uint8 views.
func fakeDecodeU8(views int) func(*sample) {
	host := fakeDecode(views)
	return func(s *sample) {
		host(s)
		for _, v := range s.views {
			s.u8 = append(s.u8, []byte{byte(v[0]), byte(v[1]), byte(v[2]), byte(v[3])})
		}
		s.views = nil
	}
}

// fakeTensor is the fake uploader's output: n images of slot.
type fakeTensor struct {
	u    *fakeUploader
	slot int
	n    int
}

func (t *fakeTensor) Shape() []int { return []int{t.n, fakeDim} }
func (t *fakeTensor) Len() int     { return t.n * fakeDim }

// fakeUploader has two slots of maxBatch images of fakeDim bytes.
type fakeUploader struct {
	maxBatch int
	mu       sync.Mutex
	slots    [2][]byte
	busy     [2]chan struct{} // closed when the tower has read the slot's last tensor
	next     int
	filling  int
	submits  int
	live     int // tensors submitted and not yet freed
	// submitted, when set, sees every Submit (its count from 1).
	submitted func(n int)
}

func newFakeUploader(maxBatch int) *fakeUploader {
	u := &fakeUploader{maxBatch: maxBatch, filling: -1}
	for i := range u.slots {
		u.slots[i] = make([]byte, maxBatch*fakeDim)
		u.busy[i] = make(chan struct{})
		close(u.busy[i])
	}
	return u
}

func (u *fakeUploader) ImageBytes() int { return fakeDim }

func (u *fakeUploader) Next() ([]byte, error) {
	if u.filling >= 0 {
		return nil, errors.New("fake uploader: Next twice without Submit")
	}
	i := u.next
	<-u.busy[i] // the device has read what the slot held
	u.filling, u.next = i, 1-i
	return u.slots[i], nil
}

func (u *fakeUploader) Submit(n int) (backend.Tensor, error) {
	if u.filling < 0 || n <= 0 || n > u.maxBatch {
		return nil, fmt.Errorf("fake uploader: Submit(%d) while filling slot %d", n, u.filling)
	}
	i := u.filling
	u.filling = -1
	u.busy[i] = make(chan struct{})
	u.mu.Lock()
	u.submits++
	u.live++
	k := u.submits
	u.mu.Unlock()
	if u.submitted != nil {
		u.submitted(k)
	}
	return &fakeTensor{u: u, slot: i, n: n}, nil
}

// read is the device reading the tensor's slot: it frees the slot.
func (u *fakeUploader) read(t *fakeTensor) []float32 {
	out := make([]float32, t.n*fakeDim)
	for k := range out {
		out[k] = float32(u.slots[t.slot][k])
	}
	close(u.busy[t.slot])
	return out
}

func (u *fakeUploader) release(t backend.Tensor) {
	u.mu.Lock()
	u.live--
	u.mu.Unlock()
}

// fakeDeviceTower embeds a batch on the fake device as its views.
type fakeDeviceTower struct {
	fakeTower
}

func (f *fakeDeviceTower) EncodeDevice(px backend.Tensor, n int) ([]float32, error) {
	t := px.(*fakeTensor)
	pix := t.u.read(t)
	defer t.u.release(t)
	return f.Encode(pix, n)
}

// gpuTestPipeline is testPipeline on the upload path.
func gpuTestPipeline(t *testing.T, dir string, shards []string, views, batchRows, threads int, tw *fakeDeviceTower) (*pipeline, *fakeUploader) {
	p := testPipeline(t, dir, shards, views, batchRows, threads, tw)
	u := newFakeUploader(batchRows + views - 1)
	p.decode = fakeDecodeU8(views)
	p.input = uploadInput{u: u, release: u.release}
	return p, u
}

// TestGPUPipelineOrder: on the upload path, with decode finishing out of
// order as in TestPipelineOrderAcrossShards, every part holds its shard's
// rows in order, each its own view's; no tower call mixes shards or holds
// more than a batch; every device tensor is freed.
func TestGPUPipelineOrder(t *testing.T) {
	dir := t.TempDir()
	const nShards, per, views, batchRows = 3, 7, 2, 3
	shards := makeShards(t, dir, nShards, per)
	tw := &fakeDeviceTower{}
	p, u := gpuTestPipeline(t, filepath.Join(dir, "cache"), shards, views, batchRows, 4, tw)
	inner := p.decode
	p.decode = func(s *sample) {
		if s.seq%3 == 0 {
			time.Sleep(time.Duration(s.seq) * time.Millisecond) // finish after the next ones
		}
		inner(s)
	}
	st, err := p.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.committed != nShards || st.rows != (nShards*per-1)*views {
		t.Fatalf("stats %+v", st)
	}
	checkRows(t, p.out.cache.Dir(), nShards, per, views, shard1Sample3)
	for c, rows := range tw.calls {
		if len(rows) == 0 || len(rows) > batchRows+views-1 {
			t.Errorf("tower call %d: %d rows, batch is %d (+%d)", c, len(rows), batchRows, views-1)
		}
		for _, r := range rows[1:] {
			if r[0] != rows[0][0] {
				t.Errorf("tower call %d mixes shards: %v", c, rows)
			}
		}
	}
	if u.submits != len(tw.calls) || u.live != 0 {
		t.Errorf("%d uploads for %d tower calls, %d tensors not freed", u.submits, len(tw.calls), u.live)
	}
}

// TestGPUPipelineOverlap: the next batch is put on the device while the
// tower runs the one before. The tower's first call waits for the second
// batch's upload; a pipeline that made each batch's input only once the
// tower had finished the one before would never get there.
func TestGPUPipelineOverlap(t *testing.T) {
	dir := t.TempDir()
	shards := makeShards(t, dir, 1, 12)
	second := make(chan struct{})
	var once sync.Once
	tw := &fakeDeviceTower{}
	tw.encode = func(call int, _ []float32, _ int) error {
		if call == 0 {
			select {
			case <-second:
			case <-time.After(10 * time.Second):
				return errors.New("the second batch was never uploaded while the tower ran the first")
			}
		}
		return nil
	}
	p, u := gpuTestPipeline(t, filepath.Join(dir, "cache"), shards, 1, 4, 2, tw)
	u.submitted = func(k int) {
		if k == 2 {
			once.Do(func() { close(second) })
		}
	}
	if _, err := p.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkRows(t, p.out.cache.Dir(), 1, 12, 1, func(int, int) bool { return false })
}

// TestGPUPipelineBackPressure: with the tower stuck on its first batch, the
// input stage uploads the batches that fit in the double buffer and the
// channel to the tower (3: one in the tower, one waiting for it, one made
// and held) and no more, and the reader stops at the window; once the tower
// moves on, every row lands in place.
func TestGPUPipelineBackPressure(t *testing.T) {
	dir := t.TempDir()
	const nShards, per, views, batchRows = 2, 20, 1, 2
	shards := makeShards(t, dir, nShards, per)
	unblock := make(chan struct{})
	tw := &fakeDeviceTower{}
	tw.encode = func(call int, _ []float32, _ int) error {
		if call == 0 {
			<-unblock
		}
		return nil
	}
	p, u := gpuTestPipeline(t, filepath.Join(dir, "cache"), shards, views, batchRows, 2, tw)
	win := windowFor(2, batchRows, views, true)
	p.window = win
	var decodedN atomic.Int64
	inner := p.decode
	p.decode = func(s *sample) { inner(s); decodedN.Add(1) }
	done := make(chan error, 1)
	go func() {
		_, err := p.run(context.Background())
		done <- err
	}()
	for i := 0; decodedN.Load() < int64(win) && i < 1000; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	u.mu.Lock()
	submits := u.submits
	u.mu.Unlock()
	if n := decodedN.Load(); n != int64(win) || submits != 3 || p.bar.Done() != 0 {
		t.Errorf("with the tower stuck: %d samples read (window %d), %d batches uploaded (want 3), %d written", n, win, submits, p.bar.Done())
	}
	close(unblock)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkRows(t, p.out.cache.Dir(), nShards, per, views, shard1Sample3)
}

// TestGPUPipelineTowerError: the tower fails on the device; the run returns
// its error, shard 0's part (finished before) stays, and no device tensor
// is left unfreed, not even those uploaded ahead.
func TestGPUPipelineTowerError(t *testing.T) {
	dir := t.TempDir()
	const nShards, per = 3, 6
	shards := makeShards(t, dir, nShards, per)
	errBoom := errors.New("an illegal memory access")
	tw := &fakeDeviceTower{}
	tw.encode = func(_ int, pix []float32, _ int) error {
		if pix[0] == 1 {
			return errBoom
		}
		return nil
	}
	p, u := gpuTestPipeline(t, filepath.Join(dir, "cache"), shards, 1, 4, 2, tw)
	st, err := p.run(context.Background())
	if !errors.Is(err, errBoom) || st.committed != 1 {
		t.Fatalf("err %v, %d shards committed; want the tower's error after shard 0", err, st.committed)
	}
	if u.live != 0 {
		t.Errorf("%d device tensors not freed", u.live)
	}
	got, _ := filepath.Glob(filepath.Join(p.out.cache.Dir(), "done", "*"))
	if len(got) != 1 || !strings.Contains(got[0], "train-000000") {
		t.Errorf("markers %v, want shard 0's alone", got)
	}
}
