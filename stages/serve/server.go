package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/stages/bundle"
)

// Classifier is what the server needs of a bundle; *bundle.Bundle is one,
// tests use fakes to hold requests in flight.
type Classifier interface {
	// Prepare decodes a photo and preprocesses it: pixels (3,S,S).
	Prepare(data []byte, lim imageproc.Limits) ([]float32, error)
	// Probabilities gives n images' class probabilities (n,K), or the
	// device error that stopped the tower.
	Probabilities(pixels []float32, n int) ([]float32, error)
	// Top is one image's k best predictions at rank.
	Top(probs []float32, k int, rank string) ([]bundle.Prediction, error)
	// CheckRank says whether Top accepts rank.
	CheckRank(rank string) error
	// Classes are the classes, in order.
	Classes() []bundle.Class
}

var _ Classifier = (*bundle.Bundle)(nil)

// Routes (also the metrics' route label; anything else is "other").
const (
	routePage    = "/"
	routePredict = "/v1/predict"
	routeClasses = "/v1/classes"
	routeHealth  = "/healthz"
	routeMetrics = "/metrics"
	routeOther   = "other"
)

// Reasons a predict request is refused with 503.
const (
	reasonQueueFull = "queue_full"
	reasonTimeout   = "timeout"
)

// Server answers the HTTP API over a Classifier. Close stops its tower
// goroutine once no request is in flight.
type Server struct {
	cfg     Config
	clf     Classifier
	metrics *metrics
	start   time.Time
	info    Info
	batch   int // most photos per tower call

	admit   chan struct{} // Threads+Queue places: a request holds one from admission to answer
	decode  chan struct{} // Threads places: a request holds one while its photo is decoded
	jobs    chan *job     // to the tower goroutine
	stop    chan struct{}
	stopped sync.WaitGroup
	once    sync.Once
}

// Info describes the classifier in /healthz; Run fills it from the bundle.
type Info struct {
	Bundle      string `json:"bundle,omitempty"`
	Tower       string `json:"tower,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Classes     int    `json:"classes"`
}

// New makes a server over clf; it starts the tower goroutine.
func New(cfg Config, clf Classifier, info Info) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	info.Classes = len(clf.Classes())
	w := cfg.workers()
	s := &Server{cfg: cfg, clf: clf, metrics: newMetrics(), start: time.Now(), info: info, batch: cfg.batch(),
		admit: make(chan struct{}, w+cfg.Queue), decode: make(chan struct{}, w),
		jobs: make(chan *job, w+cfg.Queue), stop: make(chan struct{})}
	s.stopped.Add(1)
	go s.tower()
	return s, nil
}

// Close stops the tower goroutine; call it after the HTTP server has shut down.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.stop)
		s.stopped.Wait()
	})
}

// Handler is the server's routes, each error a JSON body.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.metrics.inFlight.Add(1)
		defer s.metrics.inFlight.Add(-1)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		route := s.route(r.URL.Path)
		defer func() {
			if v := recover(); v != nil {
				s.logf("serve: panic in %s %s: %v", r.Method, r.URL.Path, v)
				if !rec.wrote {
					writeError(rec, errorf(http.StatusInternalServerError, "internal error"))
				}
			}
			s.metrics.request(route, rec.status, time.Since(start).Seconds())
		}()
		s.dispatch(rec, r, route)
	})
}

func (s *Server) route(path string) string {
	switch path {
	case "/", "/index.html", "/app.js", "/app.css":
		return routePage
	case routePredict, routeClasses, routeHealth, routeMetrics:
		return path
	}
	return routeOther
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, route string) {
	if route == routePredict {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, errorf(http.StatusMethodNotAllowed, "%s %s: use POST with the photo as the form field %q or the body", r.Method, r.URL.Path, UploadField))
			return
		}
		s.predict(w, r)
		return
	}
	if route == routeOther {
		writeError(w, errorf(http.StatusNotFound, "no such page: %s (the API is POST /v1/predict, GET /v1/classes, /healthz, /metrics)", r.URL.Path))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, errorf(http.StatusMethodNotAllowed, "%s %s: use GET", r.Method, r.URL.Path))
		return
	}
	switch route {
	case routePage:
		servePage(w, r)
	case routeClasses:
		writeJSON(w, http.StatusOK, map[string]any{"count": len(s.clf.Classes()), "classes": s.clf.Classes()})
	case routeHealth:
		writeJSON(w, http.StatusOK, struct {
			Status string `json:"status"`
			Info
			UptimeSeconds float64 `json:"uptime_s"`
		}{"ok", s.info, time.Since(s.start).Seconds()})
	case routeMetrics:
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.metrics.writeTo(w)
	}
}

// statusRecorder remembers the status written.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// ErrorBody is every error's JSON body.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if he, ok := err.(*httpError); ok {
		status = he.status
	}
	writeJSON(w, status, ErrorBody{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// retryAfter estimates when a refused request could come back: the queue's
// length times the mean latency, spread over the decoders, 1 to 60 s.
func (s *Server) retryAfter() string {
	mean := s.metrics.meanLatency()
	queued := float64(len(s.admit))
	secs := mean * queued / float64(max(1, cap(s.decode)))
	return fmt.Sprint(min(60, max(1, int(secs+0.999))))
}

// RouteList is the API in words, for the cli's start-up line.
func RouteList() string {
	return strings.Join([]string{"GET /", "POST " + routePredict, "GET " + routeClasses, "GET " + routeHealth, "GET " + routeMetrics}, ", ")
}

func (s *Server) logf(format string, a ...any) {
	if s.cfg.Log != nil {
		fmt.Fprintf(s.cfg.Log, format+"\n", a...)
	}
}
