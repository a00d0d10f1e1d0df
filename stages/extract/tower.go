package extract

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/tower"
)

// Tower is the locked image tower as the pipeline sees it. Any family that
// embeds preprocessed images fits; tests use a fake one to drive the
// pipeline without a model.
type Tower interface {
	// Encode embeds n images (views) packed in pix, (n,3,S,S) row-major,
	// and returns their embeddings (n,Dim), not normalised.
	Encode(pix []float32, n int) ([]float32, error)
	// Dim is the embedding width.
	Dim() int
}

// deviceTower is a Tower that also embeds a batch already on its backend:
// the GPU paths' input, uploaded or decoded there (gpu.go).
type deviceTower interface {
	Tower
	// EncodeDevice embeds the n views of px (n,3,S,S), normalised, on the
	// tower's backend, and frees px.
	EncodeDevice(px backend.Tensor, n int) ([]float32, error)
}

// registryTower is a tower of the registry (internal/tower, any family) on
// backend be, as a Tower.
type registryTower struct {
	t  *tower.Tower
	be backend.Backend
}

var _ deviceTower = registryTower{}

// Encode runs the tower; a backend reports a device failure inside an op by
// panicking (the backend interface has no error returns), which becomes an
// error here.
func (r registryTower) Encode(pix []float32, n int) (emb []float32, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("image tower: %v", p)
		}
	}()
	return r.t.Encode(pix, n), nil
}

// EncodeDevice runs the tower on a batch already on its backend.
func (r registryTower) EncodeDevice(px backend.Tensor, n int) (emb []float32, err error) {
	defer r.be.Free(px)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("image tower: %v", p)
		}
	}()
	return r.t.EncodeTensor(px, n), nil
}

// Dim is the tower's embedding size with its pooling.
func (r registryTower) Dim() int { return r.t.Dim() }

// towerStage is the tower stage: it embeds each batch from in (its host
// pixels, handed back to pool after, or on the GPU paths its device
// tensor), L2-normalises the rows when normalize is set, and passes the
// batch on to out, in the order received. Batches without rows (a shard's
// end after its last full batch, or only rejects) pass through untouched.
// busy sums the time inside Encode. It closes out when it returns, for any
// reason: that is what ends the writer.
func towerStage(ctx context.Context, t Tower, normalize bool, pool *pixPool, in <-chan *batch, out chan<- *batch, busy *time.Duration) error {
	defer close(out)
	E := t.Dim()
	for b := range in {
		if err := ctx.Err(); err != nil {
			b.dropDevice()
			return err // not one more batch once the run is over: it may take minutes
		}
		if b.rows > 0 {
			t0 := time.Now()
			emb, err := encodeBatch(t, b)
			*busy += time.Since(t0)
			if err != nil {
				return err
			}
			if len(emb) != b.rows*E {
				return fmt.Errorf("image tower: %d values for %d rows of %d", len(emb), b.rows, E)
			}
			pool.put(b.pix)
			b.pix = nil
			if normalize {
				normalizeRows(emb, b.rows, E)
			}
			b.emb = emb
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return ctx.Err()
}

// encodeBatch embeds b's rows from its device tensor when it has one (the
// tower frees it), else from its host pixels.
func encodeBatch(t Tower, b *batch) ([]float32, error) {
	if b.dev == nil {
		return t.Encode(b.pix, b.rows)
	}
	dt, ok := t.(deviceTower)
	if !ok {
		return nil, fmt.Errorf("extract: a batch on the device for a tower that takes host pixels only")
	}
	dev := b.dev
	b.dev = nil
	return dt.EncodeDevice(dev, b.rows)
}

// normalizeRows L2-normalises each row of x (N,D) in place.
func normalizeRows(x []float32, n, d int) {
	for i := 0; i < n; i++ {
		r := x[i*d : (i+1)*d]
		var ss float64
		for _, v := range r {
			ss += float64(v) * float64(v)
		}
		if ss == 0 {
			continue
		}
		inv := float32(1 / math.Sqrt(ss))
		for k := range r {
			r[k] *= inv
		}
	}
}
