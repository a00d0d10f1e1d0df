package serve

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// metrics are the server's counters, written in Prometheus' text exposition
// format (version 0.0.4) by hand: no client library is needed for a few
// counters, one histogram and two gauges.
type metrics struct {
	mu       sync.Mutex
	requests map[[2]string]uint64 // (route, status code) → count
	rejected map[string]uint64    // reason → count
	latency  histogram            // POST /v1/predict, seconds
	batches  uint64               // tower calls
	images   uint64               // photos through the tower

	inFlight atomic.Int64 // HTTP requests being handled
	waiting  atomic.Int64 // predict requests admitted, not yet decoding
}

// latencyBuckets are the histogram's upper bounds in seconds: from a small
// tower's few milliseconds to a queue's tens of seconds.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type histogram struct {
	counts []uint64 // per bucket (not cumulative); the last is +Inf
	sum    float64
	n      uint64
}

func newMetrics() *metrics {
	return &metrics{requests: map[[2]string]uint64{}, rejected: map[string]uint64{},
		latency: histogram{counts: make([]uint64, len(latencyBuckets)+1)}}
}

func (m *metrics) request(route string, code int, predictSeconds float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[[2]string{route, strconv.Itoa(code)}]++
	if route == routePredict {
		i := sort.SearchFloat64s(latencyBuckets, predictSeconds)
		m.latency.counts[i]++
		m.latency.sum += predictSeconds
		m.latency.n++
	}
}

func (m *metrics) reject(reason string) {
	m.mu.Lock()
	m.rejected[reason]++
	m.mu.Unlock()
}

func (m *metrics) batch(n int) {
	m.mu.Lock()
	m.batches++
	m.images += uint64(n)
	m.mu.Unlock()
}

// meanLatency is the mean predict latency so far (0 before the first).
func (m *metrics) meanLatency() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.latency.n == 0 {
		return 0
	}
	return m.latency.sum / float64(m.latency.n)
}

// writeTo writes every metric in the text exposition format.
func (m *metrics) writeTo(w io.Writer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	head := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	head("litcache_http_requests_total", "counter", "HTTP requests answered, by route and status code.")
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "litcache_http_requests_total{route=%q,code=%q} %d\n", k[0], k[1], m.requests[k])
	}
	head("litcache_predict_duration_seconds", "histogram", "Time from request to answer of POST /v1/predict, queueing included.")
	var cum uint64
	for i, le := range latencyBuckets {
		cum += m.latency.counts[i]
		fmt.Fprintf(&b, "litcache_predict_duration_seconds_bucket{le=%q} %d\n", formatFloat(le), cum)
	}
	cum += m.latency.counts[len(latencyBuckets)]
	fmt.Fprintf(&b, "litcache_predict_duration_seconds_bucket{le=\"+Inf\"} %d\n", cum)
	fmt.Fprintf(&b, "litcache_predict_duration_seconds_sum %s\n", formatFloat(m.latency.sum))
	fmt.Fprintf(&b, "litcache_predict_duration_seconds_count %d\n", m.latency.n)
	head("litcache_predict_rejected_total", "counter", "Predict requests refused with 503, by reason (queue_full, timeout).")
	for _, r := range []string{reasonQueueFull, reasonTimeout} {
		fmt.Fprintf(&b, "litcache_predict_rejected_total{reason=%q} %d\n", r, m.rejected[r])
	}
	head("litcache_http_in_flight_requests", "gauge", "HTTP requests being handled now.")
	fmt.Fprintf(&b, "litcache_http_in_flight_requests %d\n", m.inFlight.Load())
	head("litcache_predict_queued_requests", "gauge", "Predict requests admitted and waiting for a decoder.")
	fmt.Fprintf(&b, "litcache_predict_queued_requests %d\n", m.waiting.Load())
	head("litcache_tower_batches_total", "counter", "Image-tower calls.")
	fmt.Fprintf(&b, "litcache_tower_batches_total %d\n", m.batches)
	head("litcache_tower_images_total", "counter", "Photos run through the image tower.")
	fmt.Fprintf(&b, "litcache_tower_images_total %d\n", m.images)
	_, err := io.WriteString(w, b.String())
	return err
}

func formatFloat(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
