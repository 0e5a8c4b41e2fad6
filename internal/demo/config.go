package demo

import (
	"fmt"
	"time"

	"github.com/holdfast/holdfast/internal/config"
)

// configTemplate is the demo's gateway configuration, written as a person
// would write holdfast.yaml so that it can be read as an example: the
// fmt verbs are the listen address and the backends' base URLs, known only
// once the backends listen.
//
// The admin listener is on loopback, with a token written for the run, so
// that "holdfast status" and "holdfast drain" work from a second terminal.
//
// The settings are chosen to make failures visible within seconds: one
// failure ejects a server (max_fails 1) for 2s (doubling while it keeps
// failing), a backend that does not answer within 800ms is given up on, and
// each request has four tries, which may go back to a server that timed
// out (same_server_on_timeout). That last one is the demo's choice, not the
// default: while flaky-dies is dead and flaky-502 ejected, slow is the only
// server left, and a GET that hit one of its slow answers would otherwise
// get the 504 (retry_skipped timeout_same_server), an error that holdfast
// could have absorbed. slow is slow on one request in ten, not overloaded,
// so trying it again is what absorbs the failure.
//
// Four tries rather than three: while flaky-dies is dead, the other two
// take turns, and flaky-502 answers 502 about twice a second under the
// demo's load. A GET can then meet a 502, one of slow's slow answers, and
// another 502 (seen once in a loaded test run); the fourth try absorbs that
// too, and the demo promises no avoidable error.
const configTemplate = `# holdfast demo: one route, one pool of three misbehaving local backends.
listen:
  - addr: %q
admin:
  addr: %q               # holdfast status --admin ADDR reads it
  token_file: %q         # a random token, written for this run
access_log:
  path: "off"            # replaced by the demo's own access log
shutdown:
  drain_timeout: 5s
routes:
  - match: {path_prefix: /}
    upstream: demo
upstreams:
  demo:
    balance: round_robin
    servers:
      - {url: %q, max_fails: 1, fail_timeout: 2s}   # flaky-dies
      - {url: %q, max_fails: 1, fail_timeout: 2s}   # flaky-502
      - {url: %q, max_fails: 1, fail_timeout: 2s}   # slow
    timeouts: {connect: 500ms, read: 800ms}
    retry:
      on: [error, timeout, http_502, http_503, http_504]
      tries: 4
      same_server_on_timeout: true   # slow is slow now and then, not overloaded
`

// readTimeout is timeouts.read in configTemplate: the slow backend's slow
// answers must take longer than this to show a timeout.
const readTimeout = 800 * time.Millisecond

// gatewayConfig returns the demo configuration for a gateway listening on
// listen, with its admin listener on admin (token in tokenFile), in front
// of the given backend base URLs.
func gatewayConfig(listen, admin, tokenFile string, urls [3]string) (*config.Config, error) {
	yaml := fmt.Sprintf(configTemplate, listen, admin, tokenFile, urls[0], urls[1], urls[2])
	cfg, err := config.Parse([]byte(yaml), "")
	if err != nil {
		return nil, fmt.Errorf("demo: configuration: %w", err)
	}
	return cfg, nil
}
