package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// bearer returns the token of an Authorization header value of the Bearer
// scheme (RFC 6750; the scheme's name is case-insensitive).
func bearer(v string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// sameToken reports whether got is want, in time that depends on neither:
// comparing digests of a fixed length keeps even the length of the token
// from showing in the timing.
func sameToken(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
