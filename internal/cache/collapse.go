package cache

import (
	"context"
	"sync"
	"time"
)

// flight is one request under way upstream for a key, which other
// requests for the key wait on instead of going upstream too.
type flight struct {
	done chan struct{} // closed by the leader's done
}

// Lead collapses concurrent misses on key, as nginx's proxy_cache_lock
// does. The first caller for a key becomes its leader (leader true): it
// goes upstream and must call done once the response is stored or known
// not storable (calling done more than once is harmless; its wait
// returns true at once). A later caller, while the leader has not called
// done, gets leader false and calls wait: wait returns true when the
// leader is done, after which the caller looks the key up again, and
// false when ctx ends or timeout (zero or negative: none) passes first,
// after which it goes upstream itself. Waiting blocks only the waiter's
// own goroutine; no goroutine is started per waiter. Counting a
// collapsed request in Stats is left to the caller (Count).
func (c *Cache) Lead(key string) (leader bool, done func(), wait func(ctx context.Context, timeout time.Duration) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.flights[key]; ok {
		return false, func() {}, f.wait
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	var once sync.Once
	done = func() {
		once.Do(func() {
			c.mu.Lock()
			if c.flights[key] == f {
				delete(c.flights, key)
			}
			c.mu.Unlock()
			close(f.done)
		})
	}
	return true, done, func(context.Context, time.Duration) bool { return true }
}

func (f *flight) wait(ctx context.Context, timeout time.Duration) bool {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-f.done:
		return true
	case <-ctx.Done():
		return false
	case <-expired:
		return false
	}
}
