package codegen

import (
	"bytes"
	"encoding/json"
	"strings"
)

// jsonQuote quotes s as a JSON string, which is also a valid string literal
// in Python, JavaScript and Java.
func jsonQuote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	out := strings.TrimSuffix(b.String(), "\n")
	// U+2028 and U+2029 are escaped by encoding/json already; invalid UTF-8
	// becomes U+FFFD, as in every target's strings.
	return out
}

// shQuote quotes s for a POSIX shell: single quotes, with ' written '\”.
func shQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:=@%+,", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
