// Package serve is the field stage that puts a classifier bundle behind
// HTTP (net/http only): POST /v1/predict classifies one photo, GET
// /v1/classes lists the classes, GET /healthz and GET /metrics (Prometheus
// text format) are for operators, and GET / is a page (embedded, no outside
// asset) that takes a photo from a phone's camera or a desktop's files and
// shows the top-5 with score bars and the taxonomy path.
//
// Limits protect the server: the upload size; the photo's pixel count,
// read from its header before decoding (a few hundred bytes claiming
// 16000×16000 are refused); a bounded number of decodes at once, a queue of
// bounded length in front of them and a deadline per request (503 with
// Retry-After when full or late); one tower goroutine running whatever
// photos are ready as one batch. Every error is JSON {"error": "..."} with a
// 4xx or 5xx status. Run shuts down gracefully when its context ends
// (SIGTERM in the cli): in-flight requests finish, new ones are refused.
package serve

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/stages/bundle"
)

// Config is one server.
type Config struct {
	// Bundle is the classifier bundle file; Addr the address to listen on.
	Bundle string
	Addr   string

	// MaxUploadBytes bounds a request's photo.
	MaxUploadBytes int64
	// Limits bound the photo's size, checked from its header before decoding.
	Limits imageproc.Limits
	// Threads is how many photos are decoded and preprocessed at once
	// (0: all cores); Queue how many more requests may wait for one.
	// Beyond Threads+Queue admitted requests, a request gets 503.
	Threads, Queue int
	// BatchSize is the most photos per tower call (0: bundle.DefaultBatch of the backend).
	BatchSize int
	// Timeout is each request's deadline from admission to answer; a
	// request still waiting then gets 503 with Retry-After.
	Timeout time.Duration
	// DefaultTop and MaxTop bound ?top=.
	DefaultTop, MaxTop int
	// ShutdownTimeout is how long Run waits for in-flight requests at shutdown.
	ShutdownTimeout time.Duration

	Backend backend.Backend // nil: the CPU backend
	Log     io.Writer       // one line per start, stop and server error (nil: none)
	// Ready, when set, is called with the listening address once Run accepts
	// connections (tests listen on port 0).
	Ready func(addr string)
}

// DefaultConfig listens on 127.0.0.1:8080 (localhost only: exposing the
// server is a decision to make with --addr), takes photos up to 20 MiB and
// 50 megapixels, decodes on all cores with 64 more requests queued, and
// gives each request 60 s: enough for 40 clients at once to be answered by
// a ViT-B/16 on two cores.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:8080", MaxUploadBytes: 20 << 20, Limits: bundle.FieldLimits(),
		Queue: 64, Timeout: 60 * time.Second, DefaultTop: 5, MaxTop: 100,
		ShutdownTimeout: 30 * time.Second}
}

// Validate reports a Config that cannot serve, naming the setting.
func (c Config) Validate() error {
	switch {
	case c.MaxUploadBytes <= 0:
		return fmt.Errorf("serve: --max-upload-mb %g: want a positive size", float64(c.MaxUploadBytes)/(1<<20))
	case c.Limits.MaxPixels <= 0:
		return fmt.Errorf("serve: --max-megapixels %g: want a positive number", float64(c.Limits.MaxPixels)/1e6)
	case c.Threads < 0:
		return fmt.Errorf("serve: --threads %d < 0", c.Threads)
	case c.Queue < 0:
		return fmt.Errorf("serve: --queue %d < 0", c.Queue)
	case c.BatchSize < 0:
		return fmt.Errorf("serve: --batch-size %d < 0", c.BatchSize)
	case c.Timeout <= 0:
		return fmt.Errorf("serve: --timeout %s: want a positive duration", c.Timeout)
	case c.DefaultTop < 1 || c.MaxTop < c.DefaultTop:
		return fmt.Errorf("serve: top %d of at most %d: want 1 ≤ default ≤ max", c.DefaultTop, c.MaxTop)
	}
	return nil
}

func (c Config) batch() int {
	if c.BatchSize > 0 {
		return c.BatchSize
	}
	return bundle.DefaultBatch(c.Backend)
}

func (c Config) workers() int {
	if c.Threads > 0 {
		return c.Threads
	}
	return runtime.GOMAXPROCS(0)
}
