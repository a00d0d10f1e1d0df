package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/stages/bundle"
	"github.com/litcache/litcache/stages/bundle/bundletest"
	"github.com/litcache/litcache/stages/serve"
)

// gated is a classifier whose Prepare waits on a gate, to hold requests in
// flight; it counts the requests inside Prepare.
type gated struct {
	gate    chan struct{}
	inside  atomic.Int64
	entered chan struct{} // one value per Prepare entered
	// deviceErr, when set, is what Probabilities fails with (a GPU op failing).
	deviceErr error
}

func newGated() *gated {
	return &gated{gate: make(chan struct{}), entered: make(chan struct{}, 100)}
}

func (g *gated) Prepare(data []byte, _ imageproc.Limits) ([]float32, error) {
	g.inside.Add(1)
	g.entered <- struct{}{}
	<-g.gate
	g.inside.Add(-1)
	return []float32{float32(len(data))}, nil
}

func (g *gated) Probabilities(px []float32, n int) ([]float32, error) {
	if g.deviceErr != nil {
		return nil, g.deviceErr
	}
	out := make([]float32, 2*n)
	for i := range n {
		out[2*i], out[2*i+1] = 0.75, 0.25
	}
	return out, nil
}

func (g *gated) Top(p []float32, k int, rank string) ([]bundle.Prediction, error) {
	return []bundle.Prediction{{Name: "a", Score: float64(p[0])}, {Name: "b", Score: float64(p[1])}}[:min(k, 2)], nil
}

func (g *gated) CheckRank(string) error { return nil }

func (g *gated) Classes() []bundle.Class { return bundletest.Classes()[:2] }

func gatedServer(t *testing.T, g *gated, edit func(*serve.Config)) *httptest.Server {
	t.Helper()
	cfg := serve.DefaultConfig()
	edit(&cfg)
	s, err := serve.New(cfg, g, serve.Info{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return ts
}

type answer struct {
	status     int
	retryAfter string
	body       string
}

func send(url string) answer {
	c := http.Client{Timeout: 20 * time.Second} // a request the server never answers fails the test
	resp, err := c.Post(url+"/v1/predict", "image/jpeg", strings.NewReader("photo"))
	if err != nil {
		return answer{status: -1, body: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), string(b)}
}

func waitEntered(t *testing.T, g *gated, n int) {
	t.Helper()
	for range n {
		select {
		case <-g.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("requests did not reach the decoder")
		}
	}
}

// With Threads 2 and Queue 3, five requests are admitted (two decoding,
// three waiting); the sixth gets 503 with Retry-After at once, and the five
// are answered once the decoders are free.
func TestQueueFull(t *testing.T) {
	g := newGated()
	ts := gatedServer(t, g, func(c *serve.Config) { c.Threads, c.Queue = 2, 3 })
	res := make(chan answer, 5)
	for range 5 {
		go func() { res <- send(ts.URL) }()
	}
	waitEntered(t, g, 2)
	// The other three are admitted and waiting for a decoder: poll the gauge.
	waitGauge(t, ts.URL, "litcache_predict_queued_requests", 3)
	a := send(ts.URL)
	if a.status != 503 || a.retryAfter == "" || !strings.Contains(a.body, "busy") {
		t.Fatalf("sixth request: %+v, want 503 busy with Retry-After", a)
	}
	if n, err := strconv.Atoi(a.retryAfter); err != nil || n < 1 || n > 60 {
		t.Errorf("Retry-After %q: want 1..60 seconds", a.retryAfter)
	}
	if g.inside.Load() != 2 {
		t.Errorf("%d decodes at once, want 2", g.inside.Load())
	}
	close(g.gate)
	for range 5 {
		if a := <-res; a.status != 200 {
			t.Errorf("admitted request: %+v", a)
		}
	}
	if m := metricsText(t, ts.URL); !strings.Contains(m, `litcache_predict_rejected_total{reason="queue_full"} 1`) {
		t.Errorf("metrics do not count the refusal:\n%s", m)
	}
}

// A request still waiting for a decoder at its deadline gets 503 with
// Retry-After, and so does one whose decode outlasts it.
func TestTimeout(t *testing.T) {
	g := newGated()
	ts := gatedServer(t, g, func(c *serve.Config) { c.Threads, c.Timeout = 1, 300*time.Millisecond })
	first := make(chan answer, 1)
	go func() { first <- send(ts.URL) }()
	waitEntered(t, g, 1)
	a := send(ts.URL) // waits for the only decoder until its deadline
	if a.status != 503 || a.retryAfter == "" || !strings.Contains(a.body, "no answer within 300ms") {
		t.Fatalf("waiting request: %+v, want 503 with Retry-After", a)
	}
	time.Sleep(400 * time.Millisecond)
	close(g.gate)
	if a := <-first; a.status != 503 {
		t.Errorf("request decoded past its deadline: %+v, want 503", a)
	}
	if m := metricsText(t, ts.URL); !strings.Contains(m, `litcache_predict_rejected_total{reason="timeout"} 2`) {
		t.Errorf("metrics do not count 2 timeouts:\n%s", m)
	}
}

func metricsText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("metrics Content-Type %q", ct)
	}
	return string(b)
}

func waitGauge(t *testing.T, url, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if v, ok := parseMetrics(t, metricsText(t, url))[name]; ok && int(v) == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s never reached %d", name, want)
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$`)

// parseMetrics checks the text exposition format (every sample line is
// `name{labels} value`, its family announced by # HELP and # TYPE first) and
// returns the samples by name with labels.
func parseMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	typed := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# TYPE ") {
			f := strings.Fields(line)
			typed[f[2]] = f[3]
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a sample line: %q", line)
		}
		family := m[1]
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if f := strings.TrimSuffix(family, suf); typed[f] == "histogram" {
				family = f
			}
		}
		if typed[family] == "" {
			t.Fatalf("sample %q before its # TYPE", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("value in %q: %v", line, err)
		}
		out[m[1]+m[2]] = v
	}
	return out
}

// /metrics counts requests by route and code, a latency histogram whose
// buckets add up, and the requests in flight (the metrics request itself).
func TestMetrics(t *testing.T) {
	ts, f := tinyServer(t, nil)
	for range 3 {
		post(t, ts.URL+"/v1/predict", "image/jpeg", bytes.NewReader(f.Photos[0]))
	}
	post(t, ts.URL+"/v1/predict", "image/jpeg", strings.NewReader("junk"))
	http.Get(ts.URL + "/nowhere")
	m := parseMetrics(t, metricsText(t, ts.URL))
	want := map[string]float64{
		`litcache_http_requests_total{route="/v1/predict",code="200"}`: 3,
		`litcache_http_requests_total{route="/v1/predict",code="415"}`: 1,
		`litcache_http_requests_total{route="other",code="404"}`:       1,
		`litcache_predict_duration_seconds_count`:                      4,
		`litcache_predict_duration_seconds_bucket{le="+Inf"}`:          4,
		`litcache_http_in_flight_requests`:                             1,
		`litcache_tower_images_total`:                                  3,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %g, want %g", k, m[k], v)
		}
	}
	prev := 0.0
	for _, le := range []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf"} {
		v, ok := m[`litcache_predict_duration_seconds_bucket{le="`+le+`"}`]
		if !ok || v < prev {
			t.Errorf("bucket le=%s: %g (previous %g): missing or not cumulative", le, v, prev)
		}
		prev = v
	}
	if m["litcache_predict_duration_seconds_sum"] <= 0 {
		t.Errorf("latency sum %g", m["litcache_predict_duration_seconds_sum"])
	}
}

// SIGTERM (through signal.NotifyContext, as the cli's main wires it) shuts
// the server down gracefully: the request in flight gets its answer, new
// connections are refused, Run returns nil.
func TestGracefulShutdownOnSIGTERM(t *testing.T) {
	g := newGated()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg := serve.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	var log syncBuffer
	cfg.Log = &log
	ready := make(chan string, 1)
	cfg.Ready = func(addr string) { ready <- addr }
	done := make(chan error, 1)
	go func() { done <- serve.RunWith(ctx, cfg, g, serve.Info{}) }()
	url := "http://" + <-ready
	inflight := make(chan answer, 1)
	go func() { inflight <- send(url) }()
	waitEntered(t, g, 1)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The listener closes: new connections fail while the first request waits.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(url + "/healthz")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) before its request was answered", err)
	default:
	}
	close(g.gate)
	if a := <-inflight; a.status != 200 {
		t.Errorf("in-flight request: %+v, want 200", a)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the last request")
	}
	// The predict request, and maybe a /healthz probe of the loop above.
	if s := log.String(); !regexp.MustCompile(`shutting down: [12] request\(s\) in flight`).MatchString(s) || !strings.Contains(s, "stopped") {
		t.Errorf("log %q", s)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The page is self-contained: a camera-capable photo input, and no
// reference to any other host in the HTML, CSS or script.
func TestPage(t *testing.T) {
	ts, _ := tinyServer(t, nil)
	get := func(path, wantType string) string {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), wantType) {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
		return string(b)
	}
	html := get("/", "text/html")
	for _, want := range []string{`type="file"`, `accept="image/*"`, `capture="environment"`, `name="viewport"`} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	all := html + get("/app.js", "text/javascript") + get("/app.css", "text/css")
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`).FindString(all); m != "" {
		t.Errorf("the page refers to another host: %q", m)
	}
	if resp, _ := http.Head(ts.URL + "/"); resp == nil || resp.StatusCode != 200 {
		t.Errorf("HEAD /: %v", resp)
	}
	var e map[string]string
	resp, _ := http.Get(ts.URL + "/missing.js")
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 404 || e["error"] == "" {
		t.Errorf("GET /missing.js: %d %v", resp.StatusCode, e)
	}
}

// A device error from the tower answers the batch's requests with a JSON
// 500 naming it; the server keeps serving.
func TestDeviceErrorIs500(t *testing.T) {
	g := newGated()
	close(g.gate)
	g.deviceErr = errors.New("cuda: cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (2)")
	ts := gatedServer(t, g, func(*serve.Config) {})
	a := send(ts.URL)
	if a.status != 500 || !strings.Contains(a.body, `"error"`) || !strings.Contains(a.body, "CUDA_ERROR_OUT_OF_MEMORY") {
		t.Fatalf("answer %+v, want a JSON 500 naming the device error", a)
	}
	r, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("healthz after the device error: %s", r.Status)
	}
}
