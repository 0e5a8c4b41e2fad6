// Package client is a resilient HTTP client for callers of flaky services:
// [New] returns a [net/http.Client] whose Transport, a *[Transport], retries
// 502, 503 and 504 responses and connection errors with capped exponential
// backoff and full jitter, honours Retry-After, replays request bodies,
// never sends a POST twice unless it is safe, keeps a retry budget and a
// circuit breaker per host, and fails over to fallback base URLs, all with
// no wiring by the caller. A [Transport] also works alone, as the
// [net/http.RoundTripper] of any client, around any base transport.
//
// # Configuration
//
// The configuration is the [Transport] struct, as with net/http's own
// Transport: every field works at its zero value and says what zero means,
// so a literal &client.Transport{} is a complete, tuned transport, and a
// field can be read back and documented in one place. [New] takes options
// ([Option]) only because it builds the Transport out of sight inside the
// *http.Client it returns; each With function sets one field, and an Option
// is a plain func(*Transport), so nothing is reachable one way and not the
// other.
//
// # What is retried
//
// A failed attempt is one that got 502, 503 or 504 (429 too, with
// Transport.Retry429), or no response at all (a refused or reset
// connection, a DNS or TLS failure, a timeout). Failures are named with the
// causes of package [github.com/holdfast/holdfast/cause], and retried only
// when it is safe, by the same rules as holdfast's gateway (docs/design.md):
//
//   - GET, HEAD, OPTIONS, TRACE, PUT and DELETE, and any request with an
//     Idempotency-Key or X-Idempotency-Key header, are retried on every
//     failure;
//   - POST and PATCH without such a header are retried only when the
//     request provably never reached the server: a DNS, connect or TLS
//     failure, or a connection closed before any byte of the request was
//     written (as a [cause.Tracker] sees it). Transport.IdempotencyKeys adds
//     a key to them, for servers that honour it.
//
// Other responses (2xx, 3xx, 4xx, 500, 501) are returned as they are.
//
// The base transport is never handed a way to replay the body of a request
// that must not arrive twice (GetBody is cleared), since net/http's HTTP/2
// transport would otherwise resend a POST whose stream the server reset.
// One case stays beyond the client's reach: net/http may resend a request
// that has no body at all on a new connection by itself.
//
// Transport.AttemptTimeout bounds each attempt until its response header
// arrives, so that one hung attempt leaves time to retry (off by default).
//
// Retries stop at MaxAttempts, when the retry budget of the host is spent,
// and before any wait that would pass the request's context deadline: the
// last response (or error) is then returned at once rather than after a
// sleep that cannot end in time. Retry-After, in seconds or as an
// HTTP-date, is a minimum wait: one longer than MaxRetryAfter, or past the
// deadline, is not shortened but ends the retries, and the response (with
// its Retry-After) goes to the caller ([StopRetryAfter]). Bound requests
// with Transport.Timeout or a context deadline rather than
// http.Client.Timeout, which hides the *[Error] of a timed-out request.
//
// Request bodies are replayed with Request.GetBody when set, else buffered
// up to BodyBufferLimit; a larger body is streamed, and the request is not
// retried once an attempt has read from it ([StopBodyTooLarge]). The bodies of
// discarded responses are read (up to 64 KiB, for at most 250ms) and closed, so that their
// connections go back to the pool.
//
// # Hedged requests
//
// Transport.Hedge ([WithHedging]; off by default) sends another attempt
// beside one that has had no response header for a delay, to the next
// fallback base URL if there is one, else to the same host on a new
// connection, up to a number in flight; the first response wins and the
// others are canceled. It helps the tail latency of reads: with the delay
// at about the 95th percentile of the latency, one stuck server or lost
// packet costs that delay rather than a timeout, for about 5% more
// requests. Its cost is that load, spent for nothing on most hedges, and
// more of it when the servers slow down together; so hedges take tokens
// from the retry budget and are not sent when it is spent, when the
// host's circuit is not closed or when adaptive throttling refuses any of
// its requests. Only requests that are safe to send twice are hedged (the
// idempotent methods, or a POST or PATCH with an Idempotency-Key), never
// one whose body is streamed or that asks for a protocol upgrade. Hedges are attempts, numbered and counted
// against MaxAttempts like retries; [Attempt].Hedge marks them, and the
// attempts that lost are reported with [StopSuperseded].
//
// # Fallbacks, budget, breaker
//
// Transport.Fallbacks lists base URLs tried in order: when the circuit of
// the current host is open, or an attempt failed before reaching it, the
// request moves to the next one, keeping its path and query, with no wait.
// The retry budget ([BudgetConfig]) and the circuit breaker
// ([BreakerConfig]) are kept per scheme and host. An open circuit with no
// fallback left fails the request at once, without dialling, with an
// *[Error] whose Cause is destination_unavailable and which wraps
// [ErrCircuitOpen].
//
// Adaptive throttling (Transport.AdaptiveThrottle, [WithAdaptiveThrottling];
// off by default) is the client-side throttling of Google's SRE book:
// per host, over a rolling two minutes, it counts requests and those the
// host accepted (any response but 429, 502, 503 and 504), and refuses
// locally a share max(0, (requests - K*accepts) / (requests + 1)) of new
// attempts, at once, with an *[Error] whose Cause is
// destination_unavailable, whose Stop is [StopThrottled] and which wraps
// [ErrThrottled] (or moves them to the next fallback). K = 2 is the
// suggested value: the host may reject up to half of what it receives
// before anything is refused. Where the breaker is all or nothing, this
// sheds in proportion, which suits a host that is overloaded rather than
// down; a trickle still goes through, and the share refused falls back to
// zero over a few minutes once the host accepts again.
//
// Transport.OnStateChange ([WithOnStateChange]) is called on every
// transition of a host's breaker, and [Transport.BreakerState] reads a
// host's state at any time, so that it can be exported as a metric (0
// closed, 1 open, 2 half-open) or logged when it changes.
//
// # Results
//
// When retries run out, RoundTrip returns the last response with its body
// intact (or, if the last attempt got none, the last discarded response
// whose body fit in 64 KiB); with no response at all, an *[Error] with the
// final cause, every attempt's record and the total wait. A read error on
// the returned body is a *[cause.Error] naming what went wrong
// (http_response_incomplete when the server reset the connection mid-body),
// never a silent truncation. Transport.OnAttempt sees every attempt as it
// ends ([AttemptInfo]), for progress messages, logs and metrics.
//
// # Defaults
//
//	setting              default       why
//	MaxAttempts          4             three retries ride out a restart or one bad instance behind a balancer; more multiply load
//	BaseDelay            100ms         most transient failures clear at once; full jitter spreads callers over [0, 100ms]
//	MaxDelay             10s           one wait never parks a caller longer; its deadline decides beyond that
//	MaxRetryAfter        60s           honours a server's request for patience; a longer one ends the retries rather than parking a caller
//	Retry429             off           a 429 asks this caller to slow down; retrying it is the caller's choice
//	BodyBufferLimit      1 MiB         covers API payloads (the gateway's body_buffer default); uploads stream
//	IdempotencyKeys      off           a key makes a POST retry safe only if the server deduplicates on it
//	Budget               10 tokens,    after a quiet spell 4 failures in a row are all retried; under
//	                     0.1/success   sustained failure, one retry per ten successes
//	Breaker              50% of >=10   opens on a host failing half its attempts over 10s,
//	                     in 10s,       stays open 5s, then lets 3 probes through
//	                     5s, 3 probes
//	drained body         64 KiB        error pages are small; reading more costs more than a new connection
//
// The default base transport (Transport.Base nil) applies the limits of
// holdfast's gateway and probe, from the one place that holds them, so
// that the three name every failure alike:
//
//	setting                  default   why
//	MaxResponseHeaderBytes   64 KiB    far above any real header; over it, http_response_header_section_size, not net/http's 10 MiB
//	connect, TLS handshake   5s each   rides out two lost SYNs; then connection_timeout, and any method may be retried
//	response header wait     60s       nginx's proxy_read_timeout; then http_response_timeout
//	idle connection          4s        below Node.js's 5s keep-alive timeout: the client closes first
//
// # Cost
//
// When nothing fails, a Transport over an http.Transport (the default
// base) adds 4 allocations (about 820 bytes) to a request (58 allocations,
// 4.5 KB, on loopback), and about 0.9 µs of its own work on a shared
// two-core virtual machine; through net/http the difference measures 2 to
// 5 µs there, mostly scheduling, as a wrapper that only copies the request
// shows the same. The httptrace hooks that tell whether a failed request
// may be sent again are built once and reused (see cause.AcquireTracker);
// an attempt on a new connection, over HTTP/2, or over a base that is not
// an http.Transport builds its own, a dozen allocations more. Measured with
//
//	go test ./client -run '^$' -bench Overhead -benchmem -count 5
//
// docs/client.md has the table.
//
// # Compared with other libraries
//
// The defaults of two widely used retry libraries, from their sources
// (hashicorp/go-retryablehttp v0.7.x client.go; urllib3 2.x
// util/retry.py), beside holdfast's (docs/client.md adds failsafe-go and
// Polly, with their limits and timeouts):
//
//	                    holdfast client             go-retryablehttp               urllib3 Retry()
//	attempts            4 in all                    5 in all (RetryMax 4)          11 in all (total=10); Retry.DEFAULT,
//	                                                                               used by a PoolManager given none, is 3
//	                                                                               retries; requests' adapter makes none
//	backoff             full jitter over            1s*2^n capped at 30s,          none (backoff_factor 0); when set,
//	                    100ms*2^n capped at 10s     no jitter                      capped at backoff_max 120s, no jitter
//	statuses retried    502, 503, 504               every 5xx except 501,          none (status_forcelist None), except
//	                    (429 if asked)              429, and status 0              413/429/503 carrying Retry-After
//	methods retried     idempotent ones; POST/PATCH any method, POST included      HEAD GET PUT DELETE OPTIONS TRACE;
//	                    only if never sent or keyed                                connect errors for any method
//	Retry-After         minimum wait up to 60s      replaces the backoff on 429    replaces the backoff on 413/429/503,
//	                    within the deadline;        and 503, uncapped              capped by retry_after_max
//	                    longer: response returned
//	deadline            no wait that would pass it  waits until the context ends,  no bound across retries;
//	                                                then returns its error         timeouts are per attempt
//	when retries run    the last response,          drains it and returns an       raises MaxRetryError
//	out on a status     body intact                 error (unless ErrorHandler)    (raise_on_status True)
//	body replay         GetBody, or up to 1 MiB     whole body read into memory    bytes resent; a file-like body is
//	                                                                               rewound (body_pos)
//	discarded bodies    up to 64 KiB drained        up to 4 KiB drained            read to the end, connection released
//	budget, breaker,    per host, per host,         none                           none
//	fallbacks           ordered base URLs
package client
