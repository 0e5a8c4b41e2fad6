// Package alerts is the built-in alert webhook, for operators who run no
// Prometheus: it evaluates the conditions of the shipped alerting rules
// (deploy/prometheus/holdfast.rules.yml) in the process, over the metrics'
// recent samples and the health state, and POSTs a message when an alert
// starts and when it resolves.
//
// Delivery never touches the request path: evaluation and sending run on
// the Notifier's own goroutines, messages wait in a bounded queue (the
// oldest are dropped when the receiver stays down), and each is sent with
// holdfast's own client package, retried with backoff and an
// Idempotency-Key.
package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/client"
	"github.com/holdfast/holdfast/internal/config"
	"github.com/holdfast/holdfast/internal/metrics"
	"github.com/holdfast/holdfast/internal/upstream"
)

// queueSize bounds the messages waiting for delivery.
const queueSize = 64

// Options configure a Notifier.
type Options struct {
	// Metrics is where the request counts come from. Required.
	Metrics *metrics.Registry
	// Pools returns the pools in force with their health. Required.
	Pools func() []upstream.PoolStatus
	// Logger receives deliveries that failed and dropped messages. nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock. nil means time.Now.
	Now func() time.Time
	// Client sends the messages. nil means holdfast's client package with
	// a 10s timeout and 4 attempts.
	Client *http.Client
}

// Notifier evaluates the alert conditions and delivers their changes. Its
// methods are safe for concurrent use.
type Notifier struct {
	o Options

	cfg atomic.Pointer[config.Alerts]

	mu     sync.Mutex
	active map[string]*Alert // by key, firing now
	hist   history

	queue   chan Message
	dropped atomic.Int64
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

// New returns a Notifier for cfg; it does nothing until Start, nor while
// cfg has no webhook.
func New(cfg config.Alerts, o Options) *Notifier {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Client == nil {
		o.Client = client.New(
			client.WithTimeout(10*time.Second),
			client.WithMaxAttempts(4),
			client.WithBackoff(200*time.Millisecond, 5*time.Second),
			client.WithIdempotencyKeys(),
		)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{
		o:      o,
		active: make(map[string]*Alert),
		hist:   history{series: make(map[string][]sample)},
		queue:  make(chan Message, queueSize),
		stop:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
	}
	n.cfg.Store(&cfg)
	return n
}

// Update puts a reloaded configuration in force. Alerts firing stay
// firing; a new webhook receives what happens from now on.
func (n *Notifier) Update(cfg config.Alerts) { n.cfg.Store(&cfg) }

// Start runs the evaluation every alerts.interval and the delivery, until
// Close.
func (n *Notifier) Start() {
	n.wg.Go(n.deliver)
	n.wg.Go(func() {
		for {
			iv := n.cfg.Load().Interval
			if iv <= 0 {
				iv = 10 * time.Second
			}
			t := time.NewTimer(iv)
			select {
			case <-n.stop:
				t.Stop()
				return
			case <-t.C:
			}
			if n.cfg.Load().Webhook != "" {
				n.Evaluate()
			}
		}
	})
}

// Close stops evaluating, abandons deliveries in flight, and waits for
// the goroutines.
func (n *Notifier) Close() {
	n.once.Do(func() {
		close(n.stop)
		n.cancel()
	})
	n.wg.Wait()
}

// Dropped returns the messages dropped because the queue was full.
func (n *Notifier) Dropped() int64 { return n.dropped.Load() }

// Evaluate checks every condition now, and queues a message for each alert
// that started or resolved since the last evaluation.
func (n *Notifier) Evaluate() {
	now := n.o.Now()
	cfg := n.cfg.Load()
	n.mu.Lock()
	found := n.conditions(cfg, now)
	var out []Message
	for k, a := range found {
		if prev, ok := n.active[k]; ok {
			prev.Value, prev.Causes = a.Value, a.Causes
			continue
		}
		a.StartedAt = now
		n.active[k] = a
		out = append(out, a.message("firing", now))
	}
	for k, a := range n.active {
		if _, ok := found[k]; !ok {
			delete(n.active, k)
			out = append(out, a.message("resolved", now))
		}
	}
	n.mu.Unlock()
	for _, m := range out {
		n.enqueue(m)
	}
}

// Active returns the alerts firing now.
func (n *Notifier) Active() []Alert {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Alert, 0, len(n.active))
	for _, a := range n.active {
		out = append(out, *a)
	}
	return out
}

// enqueue adds m for delivery; with the queue full, the oldest message
// makes room.
func (n *Notifier) enqueue(m Message) {
	for {
		select {
		case n.queue <- m:
			return
		default:
		}
		select {
		case <-n.queue:
			if n.dropped.Add(1) == 1 {
				n.o.Logger.Warn("alert webhook: messages dropped: the receiver is not keeping up", "queue", queueSize)
			}
		default:
		}
	}
}

// deliver sends queued messages one at a time until Close.
func (n *Notifier) deliver() {
	for {
		select {
		case <-n.stop:
			return
		case m := <-n.queue:
			cfg := n.cfg.Load()
			if cfg.Webhook == "" {
				continue
			}
			if err := n.send(cfg, m); err != nil && n.ctx.Err() == nil {
				n.o.Logger.Warn("alert webhook: delivery failed", "alert", m.Alert, "status", m.Status, "err", err)
			}
		}
	}
}

func (n *Notifier) send(cfg *config.Alerts, m Message) error {
	var body any = m
	if cfg.Format == "slack" {
		body = slackMessage{Text: m.text()}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, cfg.Webhook, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "holdfast-alerts")
	resp, err := n.o.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}
