package predict

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/stages/bundle"
)

// Classifier is what the pipeline needs of a bundle; *bundle.Bundle is one,
// tests use fakes to check ordering and back-pressure without a model.
type Classifier interface {
	// Prepare decodes a photo and preprocesses it: pixels (3,S,S).
	Prepare(data []byte, lim imageproc.Limits) ([]float32, error)
	// Probabilities gives n images' class probabilities (n,K), or the
	// device error that stopped the tower.
	Probabilities(pixels []float32, n int) ([]float32, error)
	// Top is one image's k best predictions at rank.
	Top(probs []float32, k int, rank string) ([]bundle.Prediction, error)
}

var _ Classifier = (*bundle.Bundle)(nil)

// Row is one photo's answer: its predictions or why it has none.
type Row struct {
	File        string
	Rank        string
	Predictions []bundle.Prediction
	Err         error
}

// item is a photo on its way through the pipeline.
type item struct {
	seq    int
	path   string
	pixels []float32
	row    Row
}

// options are the pipeline's settings, from Config.
type options struct {
	threads, batch, top int
	rank                string
	limits              imageproc.Limits
	maxFile             int64
}

// classify runs photos through clf and calls emit with each row in input
// order, from one goroutine. At most window photos are between the feeder
// and emit at any time.
func classify(ctx context.Context, clf Classifier, photos []photo, o options, emit func(Row) error) error {
	window := make(chan struct{}, 2*o.batch+2*o.threads)
	todo := make(chan item, o.threads)
	decoded := make(chan item, o.batch)
	done := make(chan item, o.batch)
	g, ctx := errgroup.WithContext(ctx)

	g.Go(func() error { // feeder
		defer close(todo)
		for i, p := range photos {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			it := item{seq: i, path: p.path, row: Row{File: p.path, Rank: o.rank, Err: p.err}}
			select {
			case todo <- it:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	decoders := make(chan struct{}, o.threads)
	for range o.threads {
		g.Go(func() error {
			defer func() { decoders <- struct{}{} }()
			for it := range todo {
				if it.row.Err == nil {
					it.pixels, it.row.Err = readPhoto(clf, it.path, o)
				}
				select {
				case decoded <- it:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}
	g.Go(func() error { // closes decoded once every decoder is done
		for range o.threads {
			<-decoders
		}
		close(decoded)
		return nil
	})
	g.Go(func() error {
		defer close(done)
		return batcher(ctx, clf, decoded, done, o)
	})
	g.Go(func() error { // writer: rows back in input order
		pending := map[int]Row{}
		next := 0
		for it := range done {
			pending[it.seq] = it.row
			for {
				r, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				next++
				<-window
				if err := emit(r); err != nil {
					return err
				}
			}
		}
		return ctx.Err()
	})
	return g.Wait()
}

// batcher runs the tower on the decoded photos: it waits for one, takes
// every other one already waiting (up to the batch size) and classifies them
// together, so batches are full when the tower is the bottleneck and nobody
// waits for a batch to fill when it is not. Error rows pass straight through.
func batcher(ctx context.Context, clf Classifier, in <-chan item, out chan<- item, o options) error {
	var batch []item
	var px []float32
	send := func(it item) error {
		select {
		case out <- it:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		probs, err := clf.Probabilities(px, len(batch))
		if err != nil { // the device, not a photo: every later batch would fail too
			return fmt.Errorf("predict: image tower: %w", err)
		}
		K := len(probs) / len(batch)
		for i, it := range batch {
			it.row.Predictions, it.row.Err = clf.Top(probs[i*K:(i+1)*K], o.top, o.rank)
			if err := send(it); err != nil {
				return err
			}
		}
		batch, px = batch[:0], px[:0]
		return nil
	}
	add := func(it item) error {
		if it.row.Err != nil {
			return send(it)
		}
		batch = append(batch, it)
		px = append(px, it.pixels...)
		return nil
	}
	for {
		it, ok := <-in
		if !ok {
			return flush()
		}
		if err := add(it); err != nil {
			return err
		}
	more:
		for len(batch) < o.batch {
			select {
			case it, ok := <-in:
				if !ok {
					return flush()
				}
				if err := add(it); err != nil {
					return err
				}
			default:
				break more
			}
		}
		if err := flush(); err != nil {
			return err
		}
	}
}

// readPhoto reads at most o.maxFile bytes of path and prepares the photo.
func readPhoto(clf Classifier, path string, o options) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, o.maxFile+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > o.maxFile {
		return nil, fmt.Errorf("file larger than %d MB", o.maxFile>>20)
	}
	return clf.Prepare(data, o.limits)
}
