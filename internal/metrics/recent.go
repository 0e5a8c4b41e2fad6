package metrics

import (
	"sync"
	"time"
)

// Failure is one failed request, as the dashboard lists it.
type Failure struct {
	Time       time.Time `json:"time"`
	RequestID  string    `json:"request_id"`
	Route      string    `json:"route"`
	Pool       string    `json:"pool,omitempty"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Status     int       `json:"status"`
	Cause      string    `json:"cause"`
	Detail     string    `json:"detail,omitempty"`
	DurationMS float64   `json:"duration_ms"`
	Attempts   []Attempt `json:"attempts"`
}

// Attempt is one attempt of a failed request: the access log's ledger entry.
type Attempt struct {
	Server     string  `json:"server"`
	Phase      string  `json:"phase"`
	Reused     bool    `json:"reused"`
	IdleMS     float64 `json:"idle_ms"`
	Written    bool    `json:"written"`
	Cause      string  `json:"cause,omitempty"`
	Status     int     `json:"status,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// ring keeps the last n failures. Safe for concurrent use.
type ring struct {
	mu   sync.Mutex
	buf  []Failure
	next int
	full bool
}

func newRing(n int) *ring { return &ring{buf: make([]Failure, n)} }

// maxPath bounds the path kept for a failure: a client chooses it.
const maxPath = 256

func (r *ring) add(f Failure) {
	if len(f.Path) > maxPath {
		f.Path = f.Path[:maxPath] + "…"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = f
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

// list returns the failures kept, newest first.
func (r *ring) list() []Failure {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]Failure, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

// Failures returns the last failed requests, newest first.
func (r *Registry) Failures() []Failure { return r.failures.list() }
