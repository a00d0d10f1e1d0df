package serve

import (
	"embed"
	"net/http"
	"path"
)

// web holds the page: index.html, app.css and app.js, served as they are.
//
//go:embed web/index.html web/app.css web/app.js
var web embed.FS

var pageTypes = map[string]string{
	"index.html": "text/html; charset=utf-8",
	"app.css":    "text/css; charset=utf-8",
	"app.js":     "text/javascript; charset=utf-8",
}

// servePage answers GET / and the page's two assets.
func servePage(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.URL.Path)
	if r.URL.Path == "/" {
		name = "index.html"
	}
	b, err := web.ReadFile("web/" + name)
	if err != nil {
		writeError(w, errorf(http.StatusNotFound, "no such page: %s", r.URL.Path))
		return
	}
	h := w.Header()
	h.Set("Content-Type", pageTypes[name])
	// Everything the page needs is on this server: nothing else may load.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}
