package admin

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/upstream"
)

// Problem is the body of every error response: an RFC 9457 problem detail,
// sent as application/problem+json. Type is always "about:blank", so
// Title is the HTTP status phrase and Detail says what went wrong and what
// to do about it.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Errors lists the problems of a configuration that a reload
	// rejected, one per line of the error ("file:line:col: key: message").
	Errors []string `json:"errors,omitempty"`
}

// Error returns the problem's detail, so that a client can return a
// Problem as its error.
func (p *Problem) Error() string { return p.Detail }

// PoolList is the body of GET /api/v1/pools.
type PoolList struct {
	Pools []upstream.PoolStatus `json:"pools"`
}

// FailureList is the body of GET /api/v1/failures: the last failed
// requests, newest first.
type FailureList struct {
	Failures []metrics.Failure `json:"failures"`
}

// Reloaded is the body of a successful POST /api/v1/reload.
type Reloaded struct {
	Status  string `json:"status"` // "reloaded"
	Summary string `json:"summary"`
}

// health is the body of /healthz and of /readyz when ready.
type health struct {
	Status string `json:"status"`
}

// reply is the outcome of a call, written by write: a status, a body
// encoded as JSON (a *Problem as problem+json), and extra headers.
type reply struct {
	status int
	body   any
	header http.Header
	// done names a successful state change for the log ("drained").
	done string
	// handler, when set, answers instead (the Prometheus exposition).
	handler http.Handler
}

func ok(body any) *reply { return &reply{status: http.StatusOK, body: body} }

func problem(status int, detail string) *reply {
	return &reply{status: status, body: &Problem{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
	}}
}

// outcome says in a few words how the call ended, for the log.
func (rp *reply) outcome() string {
	if p, ok := rp.body.(*Problem); ok {
		return p.Detail
	}
	if rp.done != "" {
		return rp.done
	}
	return "ok"
}

// write sends rp: indented JSON ending in a newline.
func write(w http.ResponseWriter, rp *reply) {
	b, err := json.MarshalIndent(rp.body, "", "  ")
	if err != nil {
		// The bodies are plain structs: this would be a bug, but the
		// caller still gets an answer of the API's shape.
		rp = problem(http.StatusInternalServerError, "cannot encode the response: "+err.Error())
		b, _ = json.MarshalIndent(rp.body, "", "  ")
	}
	b = append(b, '\n')
	h := w.Header()
	for k, vs := range rp.header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	ct := "application/json"
	if _, ok := rp.body.(*Problem); ok {
		ct = "application/problem+json"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(rp.status)
	_, _ = w.Write(b)
}
