package serve_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/litcache/litcache/stages/bundle"
	"github.com/litcache/litcache/stages/bundle/bundletest"
	"github.com/litcache/litcache/stages/serve"
)

// chromium finds a Chromium or Chrome binary: $LITCACHE_CHROMIUM, then the
// usual names on PATH, then /usr/bin/chromium (Debian's package, which CI
// installs).
func chromium() string {
	if p := os.Getenv("LITCACHE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// browser starts a headless Chromium with a fresh profile and the flags that
// keep it from reaching out to the network (without them it is slow or
// fails on a closed network).
func browser(t *testing.T, w, h int) context.Context {
	t.Helper()
	bin := chromium()
	if bin == "" {
		t.Skip("no Chromium binary (install Debian's chromium, or set LITCACHE_CHROMIUM): the browser test cannot run")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second) // a run takes 1.5–3 s
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })
	return ctx
}

// The page in a real browser: choose a photo in the file input, wait for
// the answer, and find five predictions with names and score bars, the
// photo shown and the taxonomy path; at a desktop and at a phone viewport,
// each saved as a screenshot. LITCACHE_BROWSER_BUNDLE, _PHOTO and _SHOTS
// (a folder) let the same test photograph the page over another bundle.
func TestBrowserPage(t *testing.T) {
	dir := t.TempDir()
	bundlePath, photo := os.Getenv("LITCACHE_BROWSER_BUNDLE"), os.Getenv("LITCACHE_BROWSER_PHOTO")
	wantTop := ""
	if bundlePath == "" {
		f := bundletest.Tiny(t, dir)
		bundlePath, photo = f.Path, filepath.Join(dir, "towhee.jpg")
		if err := os.WriteFile(photo, f.Photos[2], 0o644); err != nil {
			t.Fatal(err)
		}
		wantTop = f.Classes[2].CommonName
	}
	shots := os.Getenv("LITCACHE_BROWSER_SHOTS")
	if shots == "" {
		shots = dir
	}
	b, err := bundle.Open(bundlePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s, err := serve.New(serve.DefaultConfig(), b, serve.Info{Tower: b.Meta.Tower})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts := newLocalServer(t, s)

	for _, vp := range []struct {
		name   string
		w, h   int
		scale  float64
		mobile bool
	}{{"desktop", 1280, 860, 1, false}, {"phone", 390, 844, 2, true}} {
		t.Run(vp.name, func(t *testing.T) {
			ctx := browser(t, vp.w, vp.h)
			vpOpts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(vp.scale)}
			if vp.mobile {
				vpOpts = append(vpOpts, chromedp.EmulateMobile, chromedp.EmulatePortrait)
			}
			err := chromedp.Do(ctx,
				chromedp.EmulateViewport(int64(vp.w), int64(vp.h), vpOpts...),
				chromedp.Navigate(ts),
				chromedp.WaitReady(chromedp.ID("photo")),
				chromedp.SetUploadFiles(chromedp.ID("photo"), []string{photo}),
				chromedp.WaitVisible(chromedp.CSS("#predictions li.prediction:nth-child(5)")),
				chromedp.WaitVisible(chromedp.CSS("#path li")),
			)
			if err != nil {
				t.Fatal(err)
			}
			n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#predictions li.prediction").length`))
			if err != nil {
				t.Fatal(err)
			}
			first, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#predictions li.prediction")))
			if err != nil {
				t.Fatal(err)
			}
			path, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("path")))
			if err != nil {
				t.Fatal(err)
			}
			status, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
			if err != nil {
				t.Fatal(err)
			}
			shown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("shot").complete && document.getElementById("shot").naturalWidth > 0`))
			if err != nil {
				t.Fatal(err)
			}
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
			if err != nil {
				t.Fatal(err)
			}
			if n != 5 {
				t.Errorf("%d predictions shown, want 5", n)
			}
			if !strings.Contains(first, "%") || (wantTop != "" && !strings.Contains(first, wantTop)) {
				t.Errorf("first prediction %q, want %q with a score", first, wantTop)
			}
			if !strings.Contains(path, "Animalia") && wantTop != "" {
				t.Errorf("taxonomy path %q", path)
			}
			if !shown {
				t.Error("the photo is not shown")
			}
			if strings.Contains(status, "Could not") {
				t.Errorf("status %q", status)
			}
			out := filepath.Join(shots, "page-"+vp.name+".png")
			if err := os.WriteFile(out, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot %s (%d bytes); first prediction %q", out, len(png), first)
		})
	}
}

func newLocalServer(t *testing.T, s *serve.Server) string {
	t.Helper()
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL + "/"
}
