package probe

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/holdfast/holdfast/cause"
)

// advice is the next thing to check for a failure, in one sentence.
func advice(c cause.Cause, target string, u *url.URL, o Options) string {
	host := u.Hostname()
	switch c {
	case cause.DNSError:
		return "Check that " + host + " has a DNS record (dig " + host + ") and that this machine's resolver can see it."
	case cause.DNSTimeout:
		return "The resolver did not answer: check /etc/resolv.conf and that the DNS server is reachable from here."
	case cause.ConnectionRefused:
		return "Nothing listens on " + target + ": check that the service is running and bound to that address and port."
	case cause.ConnectionTimeout:
		return "Nothing answered the connection to " + target + ": check firewalls, security groups and routes between here and there."
	case cause.TLSCertificateError:
		return "Check the certificate of " + host + " (openssl s_client -connect " + target + " -servername " + host + "): its dates, its names and who signed it."
	case cause.TLSProtocolError:
		return "Check that " + target + " speaks TLS (is it plain HTTP? try http://) and shares a TLS version with this client."
	case cause.TLSAlertReceived:
		return "The server refused the TLS handshake: check whether it requires a client certificate or a protocol this client does not offer."
	case cause.ConnectionTerminated:
		return "The server closed the connection without answering: check its logs for a crash or restart, and its keep-alive and request limits."
	case cause.HTTPResponseTimeout:
		return "The server took the request but did not answer within " + o.timeout().String() + ": check its logs and load, or what it waits on."
	case cause.ConnectionReadTimeout:
		return "The response stalled part way: check the server's logs and what it streams from."
	case cause.HTTPResponseIncomplete:
		return "The response was cut short: check the server's logs for a crash or a proxy timeout on the way."
	case cause.HTTPProtocolError:
		return "What answered on " + target + " does not speak HTTP as expected: check that the port belongs to an HTTP service."
	case cause.HTTPResponseHeaderSectionSize:
		return "The response headers are larger than 64 KiB: check what the server puts in them (cookies, debug headers)."
	case cause.ClientClosed:
		return "The probe was interrupted before an answer."
	}
	return "Check the server's logs around this time."
}

// fromResponse names the cause of an error status: what the nearest proxy
// said in Proxy-Status if anything, else the status itself.
func fromResponse(status int, proxies []ProxyStatus) (cause.Cause, string) {
	for i := len(proxies) - 1; i >= 0; i-- {
		if c, ok := cause.Parse(proxies[i].Error); ok {
			return c, proxies[i].Proxy
		}
	}
	if status == http.StatusTooManyRequests {
		return cause.HTTPRequestDenied, ""
	}
	return cause.UpstreamStatus, ""
}

// explainStatus explains an error status and says what to check.
func explainStatus(res Result, target string) (explain, next string) {
	st := strconv.Itoa(res.Status) + " " + http.StatusText(res.Status)
	for i := len(res.Proxies) - 1; i >= 0; i-- {
		p := res.Proxies[i]
		if p.Error == "" {
			continue
		}
		explain = st + " from a proxy: " + p.Explain()
		if c, ok := cause.Parse(p.Error); ok {
			next = "The proxy " + p.Proxy + " could not get an answer from its upstream (" + c.String() + "): probe that upstream directly with --connect-to and the same Host header."
			if c == cause.DestinationUnavailable || c == cause.ConnectionLimitReached {
				next = "The proxy " + p.Proxy + " has no healthy upstream left or is at its limit: check its upstream servers and their health."
			}
		}
		return explain, next
	}
	switch res.Status {
	case http.StatusBadGateway:
		return st + " with no Proxy-Status: a proxy on the way (or the application itself) got no valid answer from its upstream",
			"Probe the backend directly with --connect-to BACKEND:PORT and the same Host header, to see whether the proxy or the backend fails."
	case http.StatusServiceUnavailable:
		return st + ": the service says it cannot take the request now (overload or maintenance)",
			"Check the Retry-After header and the backend's load and health."
	case http.StatusGatewayTimeout:
		return st + ": a proxy on the way timed out waiting for its upstream",
			"Probe the backend directly with --connect-to to see how long it takes, and compare with the proxy's read timeout."
	case http.StatusTooManyRequests:
		return st + ": the request was rate limited", "Slow down and honour the Retry-After header."
	}
	return st + " from " + target, "Check the server's logs around this time."
}
