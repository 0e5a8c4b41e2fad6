package adaptive_test

import (
	"fmt"
	"time"

	"github.com/holdfast/holdfast/internal/adaptive"
)

// A caller admits each request with TryAcquire, and reports how it went
// with Done. Over the limit, it queues the request (and tries again after
// the next Done) or sheds it.
func Example() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := adaptive.New(adaptive.Config{
		MinLimit: 5, MaxLimit: 500,
		Now: func() time.Time { return now }, // a fake clock, for the example
	})
	fmt.Println("while the no-load latency is measured:", l.Limit())

	// The servers answer in 20ms however many requests they hold: the
	// limit grows for as long as that lasts.
	for range 100 {
		var admitted []adaptive.Token
		for {
			tok, ok := l.TryAcquire()
			if !ok {
				break // queue or shed; here, wait for this round to end
			}
			admitted = append(admitted, tok)
		}
		now = now.Add(20 * time.Millisecond)
		for _, tok := range admitted {
			tok.Done(20*time.Millisecond, false)
		}
	}
	s := l.Snapshot()
	fmt.Printf("after 2s: limit %d, min RTT %v\n", s.Limit, s.MinRTT)
	// Output:
	// while the no-load latency is measured: 5
	// after 2s: limit 40, min RTT 20ms
}
