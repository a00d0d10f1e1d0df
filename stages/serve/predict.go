package serve

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/stages/bundle"
)

// PredictResponse is POST /v1/predict's answer.
type PredictResponse struct {
	Predictions []bundle.Prediction `json:"predictions"`
	Rank        string              `json:"rank"`
	// MS is the time from the request's arrival to the answer, queueing included.
	MS float64 `json:"ms"`
}

// job is one photo waiting for the tower.
type job struct {
	ctx    context.Context
	pixels []float32
	top    int
	rank   string
	res    chan jobResult // buffered: the tower never waits for a requester gone
}

type jobResult struct {
	preds []bundle.Prediction
	err   error
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	top, rank, err := s.query(r)
	if err != nil {
		writeError(w, err)
		return
	}
	// Admission: a place among Threads+Queue, or 503 at once.
	select {
	case s.admit <- struct{}{}:
		defer func() { <-s.admit }()
	default:
		s.metrics.reject(reasonQueueFull)
		w.Header().Set("Retry-After", s.retryAfter())
		writeError(w, errorf(http.StatusServiceUnavailable, "server busy: %d requests in progress or queued; retry later", cap(s.admit)))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes+2*multipartSlack)
	data, err := readUpload(r.Header.Get("Content-Type"), body, s.cfg.MaxUploadBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	px, err := s.prepare(ctx, data)
	if err == nil {
		var preds []bundle.Prediction
		if preds, err = s.infer(ctx, px, top, rank); err == nil {
			writeJSON(w, http.StatusOK, PredictResponse{Predictions: preds, Rank: rank, MS: float64(time.Since(start).Microseconds()) / 1e3})
			return
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.metrics.reject(reasonTimeout)
		w.Header().Set("Retry-After", s.retryAfter())
		err = errorf(http.StatusServiceUnavailable, "no answer within %s (the server is overloaded); retry later", s.cfg.Timeout)
	} else if errors.Is(err, context.Canceled) {
		err = errorf(499, "request cancelled by the client")
	}
	writeError(w, err)
}

// query reads ?top= and ?rank=.
func (s *Server) query(r *http.Request) (int, string, error) {
	q := r.URL.Query()
	top := s.cfg.DefaultTop
	if v := q.Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > s.cfg.MaxTop {
			return 0, "", errorf(http.StatusBadRequest, "top=%q: want a whole number from 1 to %d", v, s.cfg.MaxTop)
		}
		top = n
	}
	rank := q.Get("rank")
	if rank == "" {
		rank = "species"
	}
	if err := s.clf.CheckRank(rank); err != nil {
		return 0, "", errorf(http.StatusBadRequest, "%v", err)
	}
	return top, rank, nil
}

// prepare waits for a decoder place (until ctx ends) and decodes the photo.
func (s *Server) prepare(ctx context.Context, data []byte) ([]float32, error) {
	s.metrics.waiting.Add(1)
	select {
	case s.decode <- struct{}{}:
		s.metrics.waiting.Add(-1)
	case <-ctx.Done():
		s.metrics.waiting.Add(-1)
		return nil, ctx.Err()
	}
	defer func() { <-s.decode }()
	px, err := s.clf.Prepare(data, s.cfg.Limits)
	if err != nil {
		return nil, photoError(data, err)
	}
	return px, nil
}

// photoError gives a decoding error its status: 413 for a photo over the
// limits, 415 for a format not read, 422 for a broken photo.
func photoError(data []byte, err error) error {
	switch {
	case errors.Is(err, imageproc.ErrTooLarge):
		return errorf(http.StatusRequestEntityTooLarge, "%v", err)
	case errors.Is(err, imageproc.ErrEmpty):
		return errorf(http.StatusBadRequest, "empty photo")
	case imageproc.Format(data) == "" && !isWebP(data):
		return errorf(http.StatusUnsupportedMediaType, "%v (send JPEG, PNG or WebP)", err)
	}
	return errorf(http.StatusUnprocessableEntity, "cannot decode the photo: %v", err)
}

func isWebP(data []byte) bool {
	return len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP"
}

// infer hands the photo to the tower goroutine and waits for its answer.
func (s *Server) infer(ctx context.Context, px []float32, top int, rank string) ([]bundle.Prediction, error) {
	if err := ctx.Err(); err != nil { // past its deadline already: the tower is not troubled
		return nil, err
	}
	j := &job{ctx: ctx, pixels: px, top: top, rank: rank, res: make(chan jobResult, 1)}
	select {
	case s.jobs <- j:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-j.res:
		return r.preds, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// tower is the one goroutine running the image tower: it waits for a photo,
// takes every other one already waiting (up to BatchSize), drops those whose
// requester has given up, and classifies the rest as one batch.
func (s *Server) tower() {
	defer s.stopped.Done()
	var batch []*job
	var px []float32
	for {
		batch, px = batch[:0], px[:0]
		select {
		case j := <-s.jobs:
			batch = append(batch, j)
		case <-s.stop:
			return
		}
	more:
		for len(batch) < s.batch {
			select {
			case j := <-s.jobs:
				batch = append(batch, j)
			default:
				break more
			}
		}
		live := batch[:0]
		for _, j := range batch {
			if j.ctx.Err() == nil {
				live = append(live, j)
				px = append(px, j.pixels...)
			}
		}
		if len(live) == 0 {
			continue
		}
		s.run(live, px)
	}
}

// run classifies one batch; a panic in the classifier fails the batch's
// requests, not the server.
func (s *Server) run(batch []*job, px []float32) {
	defer func() {
		if v := recover(); v != nil {
			s.logf("serve: classifier panic: %v", v)
			for _, j := range batch {
				select { // jobs answered before the panic keep their answer
				case j.res <- jobResult{err: errorf(http.StatusInternalServerError, "internal error while classifying")}:
				default:
				}
			}
		}
	}()
	probs, err := s.clf.Probabilities(px, len(batch))
	if err != nil {
		s.logf("serve: image tower: %v", err)
		for _, j := range batch {
			j.res <- jobResult{err: errorf(http.StatusInternalServerError, "image tower failed: %v", err)}
		}
		return
	}
	s.metrics.batch(len(batch))
	K := len(probs) / len(batch)
	for i, j := range batch {
		preds, err := s.clf.Top(probs[i*K:(i+1)*K], j.top, j.rank)
		if err != nil {
			err = errorf(http.StatusInternalServerError, "%v", err)
		}
		j.res <- jobResult{preds: preds, err: err}
	}
}
