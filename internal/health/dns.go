package health

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/upstream"
)

// maxLookup bounds one DNS lookup, whatever the refresh interval.
const maxLookup = 10 * time.Second

// errEmptyAnswer is a lookup that succeeded with no address or record: it
// is treated as a failure, so that the last good answer stays in use.
var errEmptyAnswer = errors.New("the answer holds no address")

func resolveKey(pool string, s *upstream.Server, every time.Duration) string {
	return fmt.Sprintf("resolve\x00%s\x00%s\x00%s", pool, s.Name, every)
}

// resolveLoop looks up the server's host name now and then every interval
// (shortened by up to a tenth at random), until ctx ends.
func (r *Runner) resolveLoop(pool string, s *upstream.Server, every time.Duration) func(context.Context) {
	return func(ctx context.Context) {
		host := s.URL.Hostname()
		failing := false
		for {
			lctx, cancel := context.WithTimeout(ctx, min(every, maxLookup))
			addrs, err := r.o.Resolver.LookupHost(lctx, host)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err == nil && len(addrs) == 0 {
				err = errEmptyAnswer
			}
			now := r.o.Now()
			if err != nil {
				cs := lookupCause(err)
				s.State.DNSFailed(cs.String(), err.Error(), now)
				if !failing {
					level := "warn"
					if prev, _ := s.State.Addrs(); prev == nil {
						level = "error"
					}
					r.logLookup(level, "DNS lookup failed: the last good addresses stay in use",
						"pool", pool, "server", s.Name, "host", host, "cause", cs.String(), "err", err)
				}
				failing = true
			} else {
				prev, _ := s.State.Addrs()
				slices.Sort(addrs)
				s.State.SetAddrs(addrs, now)
				if failing || (prev != nil && !slices.Equal(prev, addrs)) {
					r.o.Logger.Info("DNS answer for a server", "pool", pool, "server", s.Name, "host", host, "addresses", addrs, "was", prev)
				}
				failing = false
			}
			if !sleep(ctx, every-time.Duration(rand.Int64N(int64(every/10)+1))) {
				return
			}
		}
	}
}

func (r *Runner) logLookup(level, msg string, args ...any) {
	if level == "error" {
		r.o.Logger.Error(msg, args...)
		return
	}
	r.o.Logger.Warn(msg, args...)
}

// lookupCause names the cause of a failed lookup: dns_timeout when the
// resolver did not answer in time, dns_error otherwise.
func lookupCause(err error) cause.Cause {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsTimeout || errors.Is(err, context.DeadlineExceeded) {
		return cause.DNSTimeout
	}
	return cause.DNSError
}
