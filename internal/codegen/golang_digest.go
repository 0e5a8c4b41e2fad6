package codegen

import (
	"fmt"
	"strings"

	"github.com/holdfast/holdfast/internal/curl"
)

// goAuth returns the statements that add -u's credentials to a request
// req, for each attempt ("" for none). Digest's are added by
// digestTransport: for a user:password split when the program runs, the
// split is written here, before the transport is made, as user and
// password.
func goAuth(g *goProgram, r *curl.Request) string {
	a := r.Auth
	switch {
	case a == nil:
		return ""
	case a.SplitAtRunTime:
		g.use("strings")
		split := fmt.Sprintf("// %s\nuser, password, _ := strings.Cut(%s, \":\")\n", splitComment, g.str(a.User))
		if a.Digest {
			g.w("\t%s", strings.ReplaceAll(split, "\nuser", "\n\tuser"))
			return ""
		}
		return split + "req.SetBasicAuth(user, password)\n"
	case a.Digest:
		return ""
	}
	return fmt.Sprintf("req.SetBasicAuth(%s, %s)\n", g.str(a.User), g.str(a.Password))
}

// goDigestTransport returns the transport that answers the Digest
// challenges of curl --digest around base, and marks the code it needs;
// "" when the request has no Digest authentication.
func goDigestTransport(g *goProgram, r *curl.Request, base string) string {
	if r.Auth == nil || !r.Auth.Digest {
		return ""
	}
	g.needs["digest"] = true
	g.use("crypto/md5", "crypto/rand", "crypto/sha256", "encoding/hex", "hash", "io", "strings", "cmp")
	user, password := "user", "password"
	if !r.Auth.SplitAtRunTime {
		user, password = g.str(r.Auth.User), g.str(r.Auth.Password)
	}
	return fmt.Sprintf("digestTransport{user: %s, password: %s, base: %s}", user, password, base)
}

// goDigestComment is the comment on the code that sends a request through
// digestTransport.
const goDigestComment = "// curl --digest: the request goes out first without credentials and without\n" +
	"// its body; a Digest challenge in the 401 that answers it is answered by\n" +
	"// sending the request again, whole, with its Authorization (see digestTransport).\n"

// goDigestCode answers Digest challenges (RFC 7616) as curl 7.88 does.
// net/http has no Digest authentication, and the libraries that add one
// send the whole request first, where curl sends it without its body.
const goDigestCode = `
// digestTransport answers a Digest challenge (RFC 7616) as curl --digest
// does: each request goes out first without credentials and without its
// body, and a 401 that challenges with Digest is answered by sending the
// request again, whole, with the Authorization the challenge asks for. A
// success (2xx) of a request whose body was held back is followed, as
// curl follows it, by the whole request, still without credentials; any
// other response, a 401 whose challenge cannot be answered included, is
// the request's response. The exchange is one attempt of the request.
type digestTransport struct {
	user, password string
	base           http.RoundTripper
}

func (t digestTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	probe := req.Clone(req.Context())
	probe.Body, probe.GetBody, probe.ContentLength = nil, nil, 0
	if strings.HasPrefix(probe.Header.Get("Content-Type"), "multipart/") {
		probe.Header.Del("Content-Type") // curl sends no form without its parts
	}
	resp, err := t.base.RoundTrip(probe)
	auth, again := "", false
	switch {
	case err != nil:
	case resp.StatusCode == http.StatusUnauthorized:
		auth, again = digestAuthorization(resp.Header.Values("WWW-Authenticate"), req.Method, req.URL.RequestURI(), t.user, t.password)
	case resp.StatusCode < 300:
		again = req.Body != nil
	}
	if !again {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper closes the body it was given
		}
		return resp, err
	}
	// Drain and close, so that the connection can be reused.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if auth != "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", auth)
	}
	return t.base.RoundTrip(req)
}

// digestAuthorization returns the Authorization that answers the first
// Digest challenge among the WWW-Authenticate values of a 401, for a
// request with method to uri, as curl writes it; ok is false when there
// is none this program can answer: an algorithm other than MD5, SHA-256
// and their -sess forms, or a hashed user name.
func digestAuthorization(challenges []string, method, uri, user, password string) (auth string, ok bool) {
	c, ok := digestChallenge(challenges)
	if !ok || strings.EqualFold(c["userhash"], "true") {
		return "", false
	}
	algorithm := strings.ToUpper(cmp.Or(c["algorithm"], "MD5"))
	var newHash func() hash.Hash
	switch strings.TrimSuffix(algorithm, "-SESS") {
	case "MD5":
		newHash = md5.New
	case "SHA-256":
		newHash = sha256.New
	default:
		return "", false
	}
	h := func(parts ...string) string {
		x := newHash()
		io.WriteString(x, strings.Join(parts, ":"))
		return hex.EncodeToString(x.Sum(nil))
	}
	random := make([]byte, 16)
	crand.Read(random)
	cnonce := hex.EncodeToString(random)
	realm, nonce := c["realm"], c["nonce"]
	ha1 := h(user, realm, password)
	if strings.HasSuffix(algorithm, "-SESS") {
		ha1 = h(ha1, nonce, cnonce)
	}
	ha2 := h(method, uri)
	q := strings.NewReplacer("\\", "\\\\", "\"", "\\\"")
	a := fmt.Sprintf("Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\"", q.Replace(user), q.Replace(realm), q.Replace(nonce), q.Replace(uri))
	offered := false // qop "auth"; without it, RFC 2069's answer
	for _, qop := range strings.Split(c["qop"], ",") {
		offered = offered || strings.EqualFold(strings.TrimSpace(qop), "auth")
	}
	if offered {
		a += fmt.Sprintf(", cnonce=\"%s\", nc=00000001, qop=auth, response=\"%s\"", cnonce, h(ha1, nonce, "00000001", cnonce, "auth", ha2))
	} else {
		a += fmt.Sprintf(", response=\"%s\"", h(ha1, nonce, ha2))
	}
	if opaque, ok := c["opaque"]; ok {
		a += fmt.Sprintf(", opaque=\"%s\"", q.Replace(opaque))
	}
	if alg, ok := c["algorithm"]; ok {
		a += ", algorithm=" + alg
	}
	return a, true
}

// digestChallenge returns the parameters, by lower-case name, of the
// first Digest challenge among WWW-Authenticate values, each of which may
// hold several challenges (RFC 9110, section 11.6.1).
func digestChallenge(values []string) (map[string]string, bool) {
	for _, v := range values {
		var params map[string]string // the Digest challenge's, once it starts
		for s := strings.TrimLeft(v, ", "); s != ""; s = strings.TrimLeft(s, ", ") {
			end := strings.IndexAny(s, " =,")
			if end < 0 {
				end = len(s)
			}
			token, rest := s[:end], strings.TrimLeft(s[end:], " ")
			if !strings.HasPrefix(rest, "=") {
				// An authentication scheme: a challenge starts.
				if params != nil {
					return params, true
				}
				if strings.EqualFold(token, "Digest") {
					params = map[string]string{}
				}
				s = rest
				continue
			}
			var value string
			value, s = authParamValue(strings.TrimLeft(rest[1:], " "))
			if params != nil {
				params[strings.ToLower(token)] = value
			}
		}
		if params != nil {
			return params, true
		}
	}
	return nil, false
}

// authParamValue reads the value of an auth-param, a quoted string or a
// token, at the start of s, and returns it and what follows it.
func authParamValue(s string) (value, rest string) {
	if !strings.HasPrefix(s, "\"") {
		end := strings.IndexAny(s, ", ")
		if end < 0 {
			return s, ""
		}
		return s[:end], s[end:]
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}
`
