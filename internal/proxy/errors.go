package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"net/http"
	"os"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/config"
)

// Problem is the content of an error response the gateway itself makes: the
// fields of an RFC 9457 problem document. Templates for error pages receive
// it.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Cause     string `json:"cause"`
	RequestID string `json:"request_id"`
	Attempts  int    `json:"attempts"`
}

// pages renders error bodies; the zero value uses the built-in ones.
type pages struct {
	html *htmltemplate.Template
	json *texttemplate.Template
}

func loadPages(p config.ErrorPages) (*pages, error) {
	out := new(pages)
	if p.HTML != "" {
		b, err := os.ReadFile(p.HTML)
		if err != nil {
			return nil, fmt.Errorf("error_pages.html: %w", err)
		}
		if out.html, err = htmltemplate.New("html").Parse(string(b)); err != nil {
			return nil, fmt.Errorf("error_pages.html: %w", err)
		}
	}
	if p.JSON != "" {
		b, err := os.ReadFile(p.JSON)
		if err != nil {
			return nil, fmt.Errorf("error_pages.json: %w", err)
		}
		if out.json, err = texttemplate.New("json").Parse(string(b)); err != nil {
			return nil, fmt.Errorf("error_pages.json: %w", err)
		}
	}
	return out, nil
}

var defaultHTML = htmltemplate.Must(htmltemplate.New("html").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Status}} {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;color:#222}code{background:#eee;padding:0 .3em}</style>
</head><body>
<h1>{{.Status}} {{.Title}}</h1>
<p>{{.Detail}}.</p>
<p>Cause: <code>{{.Cause}}</code> &middot; Request ID: <code>{{.RequestID}}</code></p>
</body></html>
`))

// wantsHTML reports whether the client prefers an HTML page: its Accept
// names text/html before any JSON type. Clients that name neither (curl
// sends */*) get problem+json.
func wantsHTML(accept string) bool {
	h := strings.Index(accept, "text/html")
	if h < 0 {
		return false
	}
	j := strings.Index(accept, "json")
	return j < 0 || h < j
}

// writeError sends an error response made by the gateway itself: the status
// of c, Proxy-Status naming c, X-Request-Id, Retry-After where it helps, and
// a problem+json or HTML body. detail is the explanation with internal
// addresses: it reaches the client only when exposeDetails is set. It
// returns the number of body bytes written.
func writeError(w http.ResponseWriter, r *http.Request, c cause.Cause, status int, reqID string, attempts int, detail string, exposeDetails bool, retryAfter time.Duration, pg *pages) int {
	if status == 0 {
		status = c.Status()
	}
	text := c.Summary()
	if exposeDetails && detail != "" {
		text = detail
	}
	h := w.Header()
	for k := range h {
		// A decision to close the client connection stands, and so do the
		// rate limit fields of a 429.
		if k != "Connection" && k != "Ratelimit" && k != "Ratelimit-Policy" {
			delete(h, k)
		}
	}
	h.Set("Proxy-Status", proxyStatus(c, text))
	h.Set("X-Request-Id", reqID)
	h.Set("Cache-Control", "no-store")
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		secs := int((retryAfter + time.Second - 1) / time.Second)
		if secs < 1 {
			secs = 1
		}
		h.Set("Retry-After", strconv.Itoa(secs))
	}
	p := Problem{
		Type:      "urn:holdfast:cause:" + c.String(),
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    text,
		Cause:     c.String(),
		RequestID: reqID,
		Attempts:  attempts,
	}
	var buf bytes.Buffer
	if wantsHTML(r.Header.Get("Accept")) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		t := defaultHTML
		if pg != nil && pg.html != nil {
			t = pg.html
		}
		if err := t.Execute(&buf, p); err != nil {
			buf.Reset()
			_ = defaultHTML.Execute(&buf, p)
		}
	} else {
		h.Set("Content-Type", "application/problem+json")
		if pg != nil && pg.json != nil {
			if err := pg.json.Execute(&buf, p); err != nil {
				buf.Reset()
			}
		}
		if buf.Len() == 0 {
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(p)
		}
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return 0
	}
	n, _ := w.Write(buf.Bytes())
	return n
}

// answerError answers x with holdfast's own error response, for its cause,
// status and detail, and counts the bytes written for the access log.
func (h *Handler) answerError(w http.ResponseWriter, r *http.Request, x *exchange, retryAfter time.Duration, pg *pages) {
	h.boundDrain(w, r, x)
	x.send.start()
	x.bytesOut += int64(writeError(w, r, x.cause, x.status, x.reqID, len(x.attempts), x.detail, h.expose, retryAfter, pg))
	x.send.end()
}

// boundDrain bounds by client.body_timeout net/http's reading of a request
// body that holdfast answers without having read to its end: before an
// HTTP/1 response goes out, net/http discards up to 256 KiB of what is left
// to keep the connection, with no deadline of its own, and a client that
// never sends the body it announced would hold the connection for good.
// Where no deadline can be set, the connection is closed instead.
func (h *Handler) boundDrain(w http.ResponseWriter, r *http.Request, x *exchange) {
	if r.ProtoMajor != 1 || r.Body == nil || r.Body == http.NoBody || x.reqBody.buffered {
		return
	}
	if x.dl != nil && h.bodyTO > 0 {
		_ = x.dl.SetReadDeadline(time.Now().Add(h.bodyTO))
		return
	}
	w.Header().Set("Connection", "close")
}

// proxyStatus formats an RFC 9209 Proxy-Status member for a failure.
func proxyStatus(c cause.Cause, details string) string {
	s := "holdfast; error=" + c.String()
	if details != "" {
		s += "; details=" + strconv.Quote(sanitizeHeader(details))
	}
	return s
}

// sanitizeHeader keeps a string printable ASCII so that it is a valid header
// value and sf-string.
func sanitizeHeader(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// appendProxyStatus adds holdfast's member to a Proxy-Status list that an
// upstream proxy may have started: RFC 9209 orders members from the origin
// towards the client, so holdfast's goes last.
func appendProxyStatus(h http.Header, member string) {
	if prior := h.Get("Proxy-Status"); prior != "" {
		member = prior + ", " + member
	}
	h.Set("Proxy-Status", member)
}
