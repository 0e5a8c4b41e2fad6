package probe

import (
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/cause"
)

// ProxyStatus is one member of an RFC 9209 Proxy-Status header: what one
// proxy on the way said about the response.
type ProxyStatus struct {
	Proxy          string `json:"proxy"`
	Error          string `json:"error,omitempty"`
	Details        string `json:"details,omitempty"`
	NextHop        string `json:"next_hop,omitempty"`
	ReceivedStatus int    `json:"received_status,omitempty"`
}

// ParseProxyStatus parses Proxy-Status header values (a structured-field
// list, RFC 8941) leniently: members it cannot read are skipped, never an
// error, since the header comes from any proxy.
func ParseProxyStatus(values []string) []ProxyStatus {
	var out []ProxyStatus
	for _, v := range values {
		for _, member := range splitOutsideQuotes(v, ',') {
			member = strings.TrimSpace(member)
			if member == "" {
				continue
			}
			parts := splitOutsideQuotes(member, ';')
			ps := ProxyStatus{Proxy: unquote(strings.TrimSpace(parts[0]))}
			for _, p := range parts[1:] {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				val = unquote(strings.TrimSpace(val))
				switch strings.ToLower(k) {
				case "error":
					ps.Error = val
				case "details":
					ps.Details = val
				case "next-hop":
					ps.NextHop = val
				case "received-status":
					ps.ReceivedStatus, _ = strconv.Atoi(val)
				}
			}
			out = append(out, ps)
		}
	}
	return out
}

// Explain says in words what the proxy reported.
func (p ProxyStatus) Explain() string {
	var b strings.Builder
	b.WriteString(p.Proxy)
	switch {
	case p.Error != "":
		b.WriteString(" reports ")
		b.WriteString(p.Error)
		if c, ok := cause.Parse(p.Error); ok {
			b.WriteString(": ")
			b.WriteString(c.Explain(p.NextHop))
		}
	case p.ReceivedStatus != 0:
		b.WriteString(" passed on a " + strconv.Itoa(p.ReceivedStatus) + " from the server behind it")
	default:
		b.WriteString(" handled the response")
	}
	if c, ok := cause.Parse(p.Error); p.Details != "" && p.Error != "" && (!ok || (p.Details != c.Summary() && p.Details != c.Explain(p.NextHop))) {
		b.WriteString(" (" + p.Details + ")")
	}
	return b.String()
}

func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	inQuote, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case c == '\\' && inQuote:
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == sep && !inQuote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
		return s[1 : len(s)-1]
	}
	return s
}
