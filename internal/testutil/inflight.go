package testutil

import "sync/atomic"

// InFlight counts the requests a test backend is serving now and the most
// it served at once: how a test checks a concurrency limit from the
// receiving end. The zero value is ready; it is safe for concurrent use.
type InFlight struct {
	now, peak atomic.Int64
}

// Enter counts one request in; call the returned func when it ends.
func (f *InFlight) Enter() (leave func()) {
	n := f.now.Add(1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	return func() { f.now.Add(-1) }
}

// Now returns the requests being served.
func (f *InFlight) Now() int64 { return f.now.Load() }

// Peak returns the most requests served at once.
func (f *InFlight) Peak() int64 { return f.peak.Load() }
