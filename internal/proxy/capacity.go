package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// waitQueue is a pool's first-in-first-out line of requests waiting for a
// slot (every server at its max_conns, or the adaptive limit reached). A
// waiter is its request's own goroutine blocked on a channel: the queue
// starts no goroutine, and holds at most size waiters.
type waitQueue struct {
	size    int
	timeout time.Duration

	n       atomic.Int32 // waiters, read without the lock on every freed slot
	mu      sync.Mutex
	waiters []chan struct{}
}

func newWaitQueue(size int, timeout time.Duration) *waitQueue {
	return &waitQueue{size: size, timeout: timeout}
}

// wait blocks until a slot may be free, the queue's timeout or until
// passes, or ctx ends. ready is asked once the request is in line, so that
// a slot freed just before is not missed. It returns "" when the caller
// should try again, or why it must give up: "full" (the line is at its
// size), "timeout", or "client" (ctx ended).
func (q *waitQueue) wait(ctx context.Context, until time.Time, ready func() bool) string {
	ch := make(chan struct{})
	q.mu.Lock()
	if len(q.waiters) >= q.size {
		q.mu.Unlock()
		return "full"
	}
	q.waiters = append(q.waiters, ch)
	q.n.Add(1)
	q.mu.Unlock()
	if ready() {
		q.leave(ch)
		return ""
	}
	d := time.Until(until)
	if d <= 0 {
		q.leave(ch)
		return "timeout"
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return ""
	case <-t.C:
		if !q.leave(ch) {
			return "" // woken as the timer fired: take the slot
		}
		return "timeout"
	case <-ctx.Done():
		if !q.leave(ch) {
			q.wake() // pass the wake-up on: this request will not use it
		}
		return "client"
	}
}

// leave takes ch out of the line; false when it was already woken.
func (q *waitQueue) leave(ch chan struct{}) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, c := range q.waiters {
		if c == ch {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			q.n.Add(-1)
			return true
		}
	}
	return false
}

// wake tells the first waiter that a slot was freed.
func (q *waitQueue) wake() {
	if q == nil || q.n.Load() == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) == 0 {
		return
	}
	close(q.waiters[0])
	q.waiters[0] = nil
	q.waiters = q.waiters[1:]
	q.n.Add(-1)
}

// Len returns the requests waiting.
func (q *waitQueue) Len() int { return int(q.n.Load()) }
