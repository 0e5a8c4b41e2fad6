package demo

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
)

// maxKeptLines bounds the access-log lines kept for the summary, so that a
// demo left running for hours against a broken gateway does not grow
// without end.
const maxKeptLines = 10000

// accessLog receives the gateway's access log, one JSON object a line, and
// keeps the lines of requests that were not answered 2xx, so that the
// summary can check and show their attempt ledgers. It copies every line to
// out when out is set; a failing out is ignored, since the demo's own
// accounting does not depend on it. It is safe for concurrent use.
type accessLog struct {
	out io.Writer

	mu      sync.Mutex
	partial []byte
	kept    map[string]*AccessLine // by request id
}

// AccessLine is the part of one gateway access-log line that the demo
// reads: the request, how it was answered, and the ledger of its attempts.
// The fields mean what the access log's keys of the same names mean
// (internal/proxy/accesslog.go).
type AccessLine struct {
	RequestID    string    `json:"request_id"`
	Method       string    `json:"method"`
	Path         string    `json:"path"`
	Status       int       `json:"status"`
	Cause        string    `json:"cause"`
	Detail       string    `json:"detail"`
	RetrySkipped string    `json:"retry_skipped"`
	DurationMS   float64   `json:"duration_ms"`
	Attempts     int       `json:"attempts"`
	Ledger       []Attempt `json:"ledger"`
}

// Attempt is one entry of an access-log line's attempt ledger: the server
// tried, how far the attempt got (phase), whether it reused a pooled
// connection and whether any request byte was written, and how it ended.
type Attempt struct {
	Server     string  `json:"server"`
	Phase      string  `json:"phase"`
	Reused     bool    `json:"reused"`
	IdleMS     float64 `json:"idle_ms"`
	Written    bool    `json:"written"`
	Cause      string  `json:"cause"`
	Status     int     `json:"status"`
	DurationMS float64 `json:"duration_ms"`
	WaitMS     float64 `json:"wait_ms"`
}

func newAccessLog(out io.Writer) *accessLog {
	return &accessLog{out: out, kept: make(map[string]*AccessLine)}
}

// Write implements io.Writer. The access log writes one line a call, but
// a line split across calls is put back together all the same.
func (a *accessLog) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.out != nil {
		_, _ = a.out.Write(p)
	}
	data := p
	if len(a.partial) > 0 {
		data = append(a.partial, p...)
		a.partial = nil
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		a.parse(data[:i])
		data = data[i+1:]
	}
	if len(data) > 0 {
		a.partial = append([]byte(nil), data...)
	}
	return len(p), nil
}

func (a *accessLog) parse(line []byte) {
	var l AccessLine
	if json.Unmarshal(line, &l) != nil || l.RequestID == "" {
		return
	}
	if l.Status >= 200 && l.Status <= 299 || len(a.kept) >= maxKeptLines {
		return
	}
	a.kept[l.RequestID] = &l
}

// take returns the kept line of the request with id and forgets it, or
// returns nil.
func (a *accessLog) take(id string) *AccessLine {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.kept[id]
	delete(a.kept, id)
	return l
}
