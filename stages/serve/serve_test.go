package serve_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/litcache/litcache/stages/bundle"
	"github.com/litcache/litcache/stages/bundle/bundletest"
	"github.com/litcache/litcache/stages/serve"
)

// tinyServer serves the bundletest bundle.
func tinyServer(t *testing.T, edit func(*serve.Config)) (*httptest.Server, bundletest.Fixture) {
	t.Helper()
	f := bundletest.Tiny(t, t.TempDir())
	b, err := bundle.Open(f.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cfg := serve.DefaultConfig()
	if edit != nil {
		edit(&cfg)
	}
	s, err := serve.New(cfg, b, serve.Info{Tower: b.Meta.Tower})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { ts.Close(); s.Close() })
	return ts, f
}

// multipartBody is a form with the photo in field, plus a text field before it.
func multipartBody(t *testing.T, field string, photo []byte) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("note", "from the test")
	fw, err := mw.CreateFormFile(field, "photo.jpg")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(photo)
	mw.Close()
	return mw.FormDataContentType(), &buf
}

func post(t *testing.T, url, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// The photo as the multipart field "image" or as the raw body gets the same
// answer: the top 5 by score with names and taxonomy, the rank and the time.
func TestPredict(t *testing.T) {
	ts, f := tinyServer(t, nil)
	for i, photo := range f.Photos {
		ct, body := multipartBody(t, serve.UploadField, photo)
		resp, b := post(t, ts.URL+"/v1/predict", ct, body)
		if resp.StatusCode != 200 {
			t.Fatalf("photo %d: %d %s", i, resp.StatusCode, b)
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(b, &keys); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"predictions", "rank", "ms"} {
			if _, ok := keys[k]; !ok {
				t.Errorf("answer lacks %q: %s", k, b)
			}
		}
		var got serve.PredictResponse
		json.Unmarshal(b, &got)
		if got.Rank != "species" || len(got.Predictions) != 5 || got.MS <= 0 {
			t.Fatalf("photo %d: %+v", i, got)
		}
		c := f.Classes[i]
		if p := got.Predictions[0]; p.Name != c.Name || p.CommonName != c.CommonName || p.Taxonomy != c.Taxonomy {
			t.Errorf("photo %d: top %+v, want %s", i, p, c.Name)
		}
		for k := 1; k < 5; k++ {
			if got.Predictions[k].Score > got.Predictions[k-1].Score {
				t.Errorf("photo %d: not sorted by score", i)
			}
		}
		_, raw := post(t, ts.URL+"/v1/predict", "image/jpeg", bytes.NewReader(photo))
		var r serve.PredictResponse
		json.Unmarshal(raw, &r)
		if len(r.Predictions) != 5 || r.Predictions[0].Name != c.Name || r.Predictions[0].Score != got.Predictions[0].Score {
			t.Errorf("photo %d: raw body answer %s differs from the multipart one", i, raw)
		}
	}
	_, b := post(t, ts.URL+"/v1/predict?top=2&rank=genus", "image/jpeg", bytes.NewReader(f.Photos[4]))
	var g serve.PredictResponse
	json.Unmarshal(b, &g)
	if g.Rank != "genus" || len(g.Predictions) != 2 || g.Predictions[0].Name != "Picoides" || g.Predictions[0].Taxonomy.Species != "" {
		t.Errorf("?top=2&rank=genus: %s", b)
	}
}

// Every error is a JSON {"error": "..."} with the right 4xx/5xx status.
func TestErrorsAreJSON(t *testing.T) {
	ts, f := tinyServer(t, func(c *serve.Config) { c.MaxUploadBytes = 64 << 10 })
	big := bytes.Repeat([]byte{0xff}, 65<<10)
	bigCT, bigForm := multipartBody(t, "image", big)
	noFieldCT, noField := multipartBody(t, "photo", f.Photos[0])
	cases := []struct {
		name, method, path, ct string
		body                   []byte
		status                 int
		want                   string
	}{
		{"GET predict", "GET", "/v1/predict", "", nil, 405, "use POST"},
		{"unknown path", "GET", "/v2/anything", "", nil, 404, "no such page"},
		{"POST healthz", "POST", "/healthz", "", nil, 405, "use GET"},
		{"empty body", "POST", "/v1/predict", "image/jpeg", nil, 400, "empty upload"},
		{"no image field", "POST", "/v1/predict", noFieldCT, noField.Bytes(), 400, `"image" field`},
		{"bad multipart", "POST", "/v1/predict", "multipart/form-data; boundary=xyz", []byte("--abc\r\nnonsense"), 400, "multipart"},
		{"multipart without boundary", "POST", "/v1/predict", "multipart/form-data", []byte("x"), 400, "boundary"},
		{"top 0", "POST", "/v1/predict?top=0", "image/jpeg", f.Photos[0], 400, "top="},
		{"top word", "POST", "/v1/predict?top=five", "image/jpeg", f.Photos[0], 400, "top="},
		{"top too many", "POST", "/v1/predict?top=1000", "image/jpeg", f.Photos[0], 400, "top="},
		{"bad rank", "POST", "/v1/predict?rank=tribe", "image/jpeg", f.Photos[0], 400, "tribe"},
		{"raw upload too large", "POST", "/v1/predict", "image/jpeg", big, 413, "larger than"},
		{"form upload too large", "POST", "/v1/predict", bigCT, bigForm.Bytes(), 413, "larger than"},
		{"jpeg bomb", "POST", "/v1/predict", "image/jpeg", bundletest.JPEGBomb(t, 16000, 16000), 413, "exceeds the limit"},
		{"webp bomb", "POST", "/v1/predict", "image/webp", bundletest.SolidWebP(16000, 16000, [3]uint8{1, 2, 3}, 0), 413, "exceeds the limit"},
		{"gif", "POST", "/v1/predict", "image/gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), 415, "GIF"},
		{"text", "POST", "/v1/predict", "text/plain", []byte("hello"), 415, "JPEG, PNG or WebP"},
		{"truncated jpeg", "POST", "/v1/predict", "image/jpeg", f.Photos[0][:len(f.Photos[0])/2], 422, "cannot decode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, ts.URL+c.path, bytes.NewReader(c.body))
			if c.ct != "" {
				req.Header.Set("Content-Type", c.ct)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, c.status, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var e map[string]string
			if err := json.Unmarshal(b, &e); err != nil || len(e) != 1 || e["error"] == "" {
				t.Fatalf("body %q is not {\"error\": ...}", b)
			}
			if !strings.Contains(e["error"], c.want) {
				t.Errorf("error %q, want it to contain %q", e["error"], c.want)
			}
			if c.status == 405 && resp.Header.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
		})
	}
}

// The default queue answers 40 clients at once.
func TestFortyClientsAtOnce(t *testing.T) {
	ts, f := tinyServer(t, func(c *serve.Config) { c.Threads = 2 })
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(ts.URL+"/v1/predict", "image/jpeg", bytes.NewReader(f.Photos[i%6]))
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("client %d: %d %s", i, resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClassesAndHealth(t *testing.T) {
	ts, f := tinyServer(t, nil)
	resp, err := http.Get(ts.URL + "/v1/classes")
	if err != nil {
		t.Fatal(err)
	}
	var cls struct {
		Count   int            `json:"count"`
		Classes []bundle.Class `json:"classes"`
	}
	json.NewDecoder(resp.Body).Decode(&cls)
	resp.Body.Close()
	if cls.Count != 6 || len(cls.Classes) != 6 || cls.Classes[3] != f.Classes[3] {
		t.Errorf("classes %+v", cls)
	}
	resp, err = http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 200 || h["status"] != "ok" || h["classes"] != float64(6) || h["tower"] != "clip" {
		t.Errorf("healthz %d %v", resp.StatusCode, h)
	}
}
