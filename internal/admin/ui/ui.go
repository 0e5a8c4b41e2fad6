// Package ui is the admin listener's dashboard: one page, its script and
// its style sheet, embedded in the binary so that the page needs no
// network, no CDN and no build step. The page reads the admin API from the
// same origin (/api/v1/pools, /api/v1/stats, /api/v1/failures) and drains
// and enables servers through it; package admin serves the files on / and
// /ui/. docs/admin.md describes the page.
package ui

import (
	"embed"
	"net/http"
	"strconv"
)

//go:embed index.html app.js style.css
var files embed.FS

// contentType returns the type of the file name, or "" for a name that is
// not served.
func contentType(name string) string {
	switch name {
	case "index.html":
		return "text/html; charset=utf-8"
	case "app.js":
		return "text/javascript; charset=utf-8"
	case "style.css":
		return "text/css; charset=utf-8"
	}
	return ""
}

// Policy is the Content-Security-Policy of every file: the page runs only
// its own script and style, talks only to its own origin, and may not be
// framed, so that a string from the API (a client's path) can neither run
// nor send anything anywhere even if it were ever written as markup.
const Policy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler returns the handler that serves the dashboard's file name
// ("index.html", "app.js", "style.css"), and false for any other name. The
// handler answers every request with the file, GET and HEAD alike; the
// caller routes and checks the method. It is safe for concurrent use.
func Handler(name string) (http.Handler, bool) {
	ct := contentType(name)
	if ct == "" {
		return nil, false
	}
	body, err := files.ReadFile(name)
	if err != nil {
		// Every name contentType knows is embedded: go:embed fails the
		// build otherwise.
		return nil, false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", ct)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("Content-Security-Policy", Policy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}), true
}
