package h1

import (
	"context"
	"sync"
	"time"
)

// reqContext is a request's context: it ends, with context.Canceled, when
// the client goes away while the request is in flight or when the request
// is over. It does what context.WithCancel(context.Background()) would in
// one allocation instead of two, and it lets one party learn of its end
// without the three allocations of context.AfterFunc (WatchDone): the
// proxy uses it to abort the upstream connection an attempt is blocked on.
//
// Contexts derived from it (context.WithCancel, WithTimeout, AfterFunc)
// work as usual: the context package finds the AfterFunc method and
// registers with it instead of starting a goroutine.
type reqContext struct {
	mu    sync.Mutex
	done  chan struct{} // made by the first Done, or closedChan
	err   error
	watch func() // WatchDone's
	token uint64 // watch's, and the last given out
	after map[*afterFunc]struct{}
}

type afterFunc struct{ f func() }

// closedChan is the Done channel of a context that ended before anyone
// asked for it.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Deadline reports that the context has no deadline.
func (c *reqContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// Value returns nil: a request's context carries no values.
func (c *reqContext) Value(any) any { return nil }

// Done returns a channel closed when the context ends.
func (c *reqContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			c.done = closedChan
		} else {
			c.done = make(chan struct{})
		}
	}
	return c.done
}

// Err returns nil until the context ends, and context.Canceled after.
func (c *reqContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// cancel ends the context, once; later calls do nothing. The function
// given to WatchDone runs on the calling goroutine, those given to
// AfterFunc each on a goroutine of its own.
func (c *reqContext) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	watch, after := c.watch, c.after
	c.watch, c.after = nil, nil
	c.mu.Unlock()
	if watch != nil {
		watch()
	}
	for a := range after {
		go a.f()
	}
}

// AfterFunc arranges for f to run on a goroutine of its own once the
// context ends (at once if it has), as context.AfterFunc does; stop
// prevents that and reports whether it did. The context package calls it
// for the contexts derived from this one.
func (c *reqContext) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	if c.after == nil {
		c.after = make(map[*afterFunc]struct{})
	}
	c.after[a] = struct{}{}
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.after[a]
		delete(c.after, a)
		return ok
	}
}

// WatchDone arranges for f to run once the context ends, on the goroutine
// that ends it, so f must be quick and must not block. It holds one f at a
// time, and costs no allocation. It returns the token that UnwatchDone
// takes, or 0, having done nothing, when an f is already set or the
// context has ended: the caller then falls back on context.AfterFunc.
func (c *reqContext) WatchDone(f func()) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.watch != nil {
		return 0
	}
	c.token++
	c.watch = f
	return c.token
}

// UnwatchDone removes the function WatchDone set and returned token for,
// and reports whether it did so before the context's end ran it, as the
// stop function of context.AfterFunc does. It reports false when that
// function was already removed.
func (c *reqContext) UnwatchDone(token uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watch == nil || c.token != token {
		return false
	}
	c.watch = nil
	return true
}
