package curl

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// curl drops CR and LF from what -d, --data and --data-ascii read from a
// file or from stdin, and not from --data-binary. Here-text fed to -d @-
// is known to the parser, so the model holds it stripped already.
func TestDataStdinHereTextStripsNewlines(t *testing.T) {
	tests := []struct{ name, src, body string }{
		{"here-string", "curl -d @- http://x <<< 'ab'", "ab"},
		{"here-document", "curl -d @- http://x <<EOF\nline1\nline2\nEOF\n", "line1line2"},
		{"here-string joined to other data", "curl -d a=1 -d @- http://x <<< 'xy'", "a=1&xy"},
		{"here-string joined in command order", "curl -d @- -d a=1 http://x <<< 'xy'", "xy&a=1"},
		{"carriage returns too", `curl --data @- http://x <<< $'a\r\nb'`, "ab"},
		{"data-ascii", "curl --data-ascii @- http://x <<EOF\np\nq\nEOF\n", "pq"},
		{"attached value", "curl -d@- http://x <<< 'ab'", "ab"},
		{"data-binary keeps them", "curl --data-binary @- http://x <<< 'ab'", "ab\n"},
		{"json keeps them", "curl --json @- http://x <<< '{}'", "{}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parseOne(t, tt.src)
			if got := r.Body.Data.String(); got != tt.body {
				t.Errorf("body = %q, want %q", got, tt.body)
			}
			if r.Body.Kind == BodyFile || r.Body.StripNewlines {
				t.Errorf("body kind %s, StripNewlines %v; want inline data, already stripped", r.Body.Kind, r.Body.StripNewlines)
			}
		})
	}

	// Newlines inside a variable's value cannot be stripped by the parser.
	r := parseOne(t, "curl -d @- http://x <<EOF\n$V\nEOF\n")
	if got := r.Body.Data.String(); got != "${V}" {
		t.Errorf("body = %q, want ${V}", got)
	}
	if !hasWarning(r.Warnings, "$V") {
		t.Errorf("warnings = %v, want one about newlines in $V", r.Warnings)
	}

	// -d @file and -d @- from the program's stdin stay files for the
	// generated code to strip.
	for _, src := range []string{`curl -d @in.txt http://x`, `curl -d @- http://x`, `curl -d @- http://x < in.txt`} {
		r := parseOne(t, src)
		if r.Body.Kind != BodyFile || !r.Body.StripNewlines {
			t.Errorf("%s: body kind %s, StripNewlines %v; want file, true", src, r.Body.Kind, r.Body.StripNewlines)
		}
	}

	// -G puts here-text data in the query, as curl does.
	r = parseOne(t, "curl -G -d @- http://x <<< 'a=1'")
	if got := r.URL.String(); got != "http://x?a=1" || r.Body.Kind != BodyNone {
		t.Errorf("URL = %q, body kind %s; want http://x?a=1 and no body", got, r.Body.Kind)
	}
}

// curl sends no fragment, and the query of -G and --url-query goes where
// the fragment was: "http://x/c#frag" with -d a=1 requests /c?a=1.
func TestQueryGoesBeforeFragment(t *testing.T) {
	tests := []struct{ src, url string }{
		{`curl -G -d a=1 'http://x/c#frag'`, "http://x/c?a=1"},
		{`curl -G -d a=1 'http://x/c?q=1#frag'`, "http://x/c?q=1&a=1"},
		{`curl -G -d a=1 'http://x/c?#frag?x'`, "http://x/c?a=1"},
		{`curl --url-query a=1 "http://x/c#$FRAG"`, "http://x/c?a=1"},
		{`curl -G -d a=1 "$BASE/c#frag"`, "${BASE}/c?a=1"},
	}
	for _, tt := range tests {
		r := parseOne(t, tt.src)
		if got := r.URL.String(); got != tt.url {
			t.Errorf("%s: URL = %q, want %q", tt.src, got, tt.url)
		}
	}
}

// An option value attached to a short option may read a variable, as in
// -H"Authorization: Bearer $TOKEN": it is parsed as the detached form is.
func TestAttachedShortValueWithVariable(t *testing.T) {
	r := parseOne(t, `curl -H"Authorization: Bearer $TOKEN" -sSd"a=$X" http://x`)
	if got := headerString(r, "Authorization"); got != "Bearer ${TOKEN}" {
		t.Errorf("Authorization = %q, want Bearer ${TOKEN}", got)
	}
	if v, _ := r.Header("Authorization"); v.IsLiteral() {
		t.Errorf("Authorization %q lost its variable", v.String())
	}
	if got := r.Body.Data.String(); got != "a=${X}" || r.Body.Kind != BodyURLEncoded {
		t.Errorf("body = %s %q, want urlencoded a=${X}", r.Body.Kind, got)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings = %v, want none", r.Warnings)
	}
	u := parseOne(t, `curl -ku"$U:$P" -XPOST http://x`)
	if u.Auth == nil || u.Auth.User.String() != "${U}" || u.Auth.Password.String() != "${P}" || !u.Insecure || u.Method != "POST" {
		t.Errorf("Auth = %+v, insecure %v, method %s; want ${U} / ${P}, true, POST", u.Auth, u.Insecure, u.Method)
	}

	// Same request as the detached form.
	d := parseOne(t, `curl -H "Authorization: Bearer $TOKEN" -s -S -d "a=$X" http://x`)
	if headerString(d, "Authorization") != headerString(r, "Authorization") || d.Body.Data.String() != r.Body.Data.String() {
		t.Errorf("attached and detached forms differ")
	}

	// A variable where option letters would be is still refused.
	s, err := Parse(`curl -s"$FLAGS" http://x`)
	if err != nil {
		t.Fatal(err)
	}
	if !hasWarning(s.AllWarnings(), "mixes a variable into its name") {
		t.Errorf("warnings = %v, want one about the variable in the option name", s.AllWarnings())
	}
}

// -u "$CREDS": curl splits the expanded value at its first ':'. The value
// stays whole in User, marked SplitAtRunTime for the generated code to
// split when it runs, and nothing is warned about.
func TestUserFromOneVariableSplitsAtRunTime(t *testing.T) {
	for _, src := range []string{`curl -u "$CREDS" http://x`, `curl --user "$CREDS" http://x`, `curl -u"$CREDS" http://x`, `curl --user=$CREDS http://x`} {
		s, err := Parse(src)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		r := s.Requests[0]
		if r.Auth == nil || r.Auth.User.String() != "${CREDS}" || len(r.Auth.Password) != 0 || !r.Auth.SplitAtRunTime {
			t.Errorf("%s: Auth = %+v, want user ${CREDS}, split at run time", src, r.Auth)
		}
		if w := s.AllWarnings(); len(w) != 0 {
			t.Errorf("%s: warnings = %v, want none", src, w)
		}
	}
	// A literal ':' splits here, as before; a literal value without one
	// is a user without a password, with the warning about curl's prompt.
	for _, src := range []string{`curl -u "$USER:$PASS" http://x`, `curl -u "me:$PASS" http://x`} {
		r := parseOne(t, src)
		if r.Auth == nil || r.Auth.SplitAtRunTime || r.Auth.Password.String() != "${PASS}" {
			t.Errorf("%s: Auth = %+v, want split by the parser", src, r.Auth)
		}
	}
	if r := parseOne(t, `curl -u me http://x`); r.Auth == nil || r.Auth.SplitAtRunTime || r.Auth.User.String() != "me" || !hasWarning(r.Warnings, "prompt") {
		t.Errorf("-u me: Auth = %+v, warnings %v; want user me, a warning about the prompt", r.Auth, r.Warnings)
	}
	r := parseOne(t, `curl -u "$USER:$PASS" http://x`)
	if r.Auth == nil || r.Auth.User.String() != "${USER}" || r.Auth.Password.String() != "${PASS}" || len(r.Warnings) != 0 {
		t.Errorf("Auth = %+v, warnings %v; want ${USER} / ${PASS}, no warning", r.Auth, r.Warnings)
	}
}

// An empty URL argument (curl "" http://x) is an error in curl: it is skipped with
// a warning, and the other URL makes the only request.
func TestEmptyURLSkipped(t *testing.T) {
	for _, src := range []string{`curl '' http://x`, `curl --url "" http://x`, `curl http://x ""`} {
		s, err := Parse(src)
		if err != nil {
			t.Fatalf("Parse(%q): %v", src, err)
		}
		if len(s.Requests) != 1 || s.Requests[0].URL.String() != "http://x" {
			t.Errorf("%s: %d requests, want one for http://x", src, len(s.Requests))
			continue
		}
		if !hasWarning(s.AllWarnings(), "empty URL") {
			t.Errorf("%s: warnings = %v, want one about the empty URL", src, s.AllWarnings())
		}
	}
	if _, err := Parse(`curl ''`); err == nil || !strings.Contains(err.Error(), "no URL") {
		t.Errorf("Parse(curl '') error = %v, want one saying there is no URL", err)
	}
}

// curl refuses -I with data ("You can only select one HTTP request
// method!"): the request stays HEAD, without the body, and a warning says so.
func TestHeadWithDataWarns(t *testing.T) {
	for _, src := range []string{`curl -I -d x http://x`, `curl --head -F a=1 http://x`, `curl -I -T f.txt http://x`} {
		r := parseOne(t, src)
		if r.Method != "HEAD" || r.Body.Kind != BodyNone {
			t.Errorf("%s: %s with body %s, want HEAD without a body", src, r.Method, r.Body.Kind)
		}
		if _, ok := r.Header("Content-Type"); ok {
			t.Errorf("%s: Content-Type set for a request without a body", src)
		}
		if !hasWarning(r.Warnings, "-I (HEAD) cannot be combined") {
			t.Errorf("%s: warnings = %v, want one about -I with a body", src, r.Warnings)
		}
	}
	// -G moves the data into the query: nothing is dropped.
	r := parseOne(t, `curl -I -G -d a=1 http://x`)
	if r.Method != "HEAD" || r.URL.String() != "http://x?a=1" || len(r.Warnings) != 0 {
		t.Errorf("-I -G: %s %s, warnings %v; want HEAD http://x?a=1, none", r.Method, r.URL.String(), r.Warnings)
	}
}

// -X sends its value verbatim, and methods are case-sensitive (RFC 9110
// section 9.1): "post" is not POST, "put" is not the idempotent PUT.
func TestMethodVerbatimAndCaseSensitive(t *testing.T) {
	tests := []struct {
		src, method string
		idempotent  bool
	}{
		{`curl -X post http://x`, "post", false},
		{`curl -X put http://x`, "put", false},
		{`curl -X get http://x`, "get", false},
		{`curl -X PUT http://x`, "PUT", true},
		{`curl -XDELETE http://x`, "DELETE", true},
	}
	for _, tt := range tests {
		r := parseOne(t, tt.src)
		if r.Method != tt.method || !r.MethodExplicit || r.Idempotent() != tt.idempotent {
			t.Errorf("%s: Method %q (explicit %v), Idempotent %v; want %q, true, %v", tt.src, r.Method, r.MethodExplicit, r.Idempotent(), tt.method, tt.idempotent)
		}
	}
}

// A CR or LF inside a header value would start another header (header
// injection): the header is refused with a warning.
func TestHeaderWithLineBreakRejected(t *testing.T) {
	tests := []struct{ src, name string }{
		{`curl -H $'A: b\r\nC: d' http://x`, "A"},
		{`curl -H $'A: b\nC: d' http://x`, "A"},
		{`curl -H $'A: b\rc' http://x`, "A"},
		{`curl -H $'A: $V\r\nC: d' http://x`, "A"},
		{`curl -A $'ua\r\nX: 1' http://x`, "User-Agent"},
		{`curl -e $'r\nX: 1' http://x`, "Referer"},
		{`curl -b $'a=1\r\nX: 1' http://x`, "Cookie"},
		{`curl --oauth2-bearer $'t\nX: 1' http://x`, "Authorization"},
	}
	for _, tt := range tests {
		r := parseOne(t, tt.src)
		if v, ok := r.Header(tt.name); ok {
			t.Errorf("%s: header %s = %q sent, want it refused", tt.src, tt.name, v.String())
		}
		if _, ok := r.Header("C"); ok {
			t.Errorf("%s: injected header C sent", tt.src)
		}
		if !hasWarning(r.Warnings, "carriage return or line feed") {
			t.Errorf("%s: warnings = %v, want one about the line break", tt.src, r.Warnings)
		}
	}
	// A trailing line break is trimmed, as before.
	r := parseOne(t, `curl -H $'A: b\r\n' http://x`)
	if got := headerString(r, "A"); got != "b" {
		t.Errorf("header A = %q, want b", got)
	}
}

// --data-urlencode and --url-query encode literal text now, and mark a
// variable's value and a file's contents to be read and encoded when the
// program runs, with the split into name and content curl makes.
func TestURLEncodeAtRunTime(t *testing.T) {
	tests := []struct {
		src, url, body string
		files          []string
	}{
		{src: `curl --data-urlencode "q=a b $Q" http://x`, url: "http://x", body: "q=a+b+urlencode(${Q})"},
		{src: `curl --url-query "q=$Q" http://x`, url: "http://x?q=urlencode(${Q})"},
		{src: `curl --data-urlencode "=$Q" http://x`, url: "http://x", body: "urlencode(${Q})"},
		{src: `curl --data-urlencode note@notes.txt -d a=1 http://x`, url: "http://x", body: "note=urlencode($(<notes.txt))&a=1", files: []string{"notes.txt"}},
		{src: `curl --data-urlencode @raw.txt http://x`, url: "http://x", body: "urlencode($(<raw.txt))", files: []string{"raw.txt"}},
		{src: `curl --url-query @q.txt --url-query b=2 http://x`, url: "http://x?urlencode($(<q.txt))&b=2"},
		// '=' comes first, as in curl: "a@b" is a name, not a file.
		{src: `curl --data-urlencode "a@b=c d" http://x`, url: "http://x", body: "a@b=c+d"},
		{src: `curl -G --data-urlencode n@f.txt http://x`, url: "http://x?n=urlencode($(<f.txt))"},
	}
	for _, tt := range tests {
		r := parseOne(t, tt.src)
		if got := r.URL.String(); got != tt.url {
			t.Errorf("%s: URL = %q, want %q", tt.src, got, tt.url)
		}
		if got := r.Body.Data.String(); got != tt.body {
			t.Errorf("%s: body = %q, want %q", tt.src, got, tt.body)
		}
		if got := r.Body.Data.Files(); len(tt.files) > 0 && !slices.Equal(got, tt.files) {
			t.Errorf("%s: files = %q, want %q", tt.src, got, tt.files)
		}
		if len(r.Warnings) != 0 {
			t.Errorf("%s: warnings = %v, want none", tt.src, r.Warnings)
		}
	}
	// A variable's value is encoded as curl encodes it.
	r := parseOne(t, `curl --data-urlencode "q=$Q" http://x`)
	if got := r.Body.Data.Value(func(string) string { return "a b&é" }); got != "q=a+b%26%C3%A9" {
		t.Errorf("value = %q, want q=a+b%%26%%C3%%A9", got)
	}
}

// --digest makes -u's credentials Digest ones; --basic, after it, Basic
// again. -c names the jar the program writes.
func TestDigestAndCookieJar(t *testing.T) {
	r := parseOne(t, `curl --digest -u u:p -c jar.txt -b jar.txt http://x`)
	if r.Auth == nil || !r.Auth.Digest || r.Auth.User.String() != "u" || r.Auth.Password.String() != "p" {
		t.Errorf("auth = %+v, want Digest u:p", r.Auth)
	}
	if r.CookieJar != "jar.txt" || !slices.Equal(r.CookieFiles, []string{"jar.txt"}) {
		t.Errorf("jar %q, cookie files %q", r.CookieJar, r.CookieFiles)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings = %v, want none", r.Warnings)
	}
	r = parseOne(t, `curl --digest --basic -u u:p http://x`)
	if r.Auth == nil || r.Auth.Digest {
		t.Errorf("auth = %+v, want Basic", r.Auth)
	}
}

func TestIdempotencyKeyMustBeALiteralValue(t *testing.T) {
	cases := []struct {
		cmd     string
		key     bool
		warning string
	}{
		{`curl -d a=1 -H 'Idempotency-Key: k-1' http://x/`, true, ""},
		{`curl -d a=1 -H 'X-Idempotency-Key: k-1' http://x/`, true, ""},
		{`curl -d a=1 -H 'Idempotency-Key;' http://x/`, false, ""},
		{`curl -d a=1 -H 'Idempotency-Key:    ' http://x/`, false, "removes"},
		{`curl -d a=1 -H "Idempotency-Key: $IKEY" http://x/`, false, "may be empty"},
	}
	for _, tc := range cases {
		s, err := Parse(tc.cmd)
		if err != nil {
			t.Fatalf("Parse(%s): %v", tc.cmd, err)
		}
		r := s.Requests[0]
		if got := r.HasIdempotencyKey(); got != tc.key {
			t.Errorf("%s: HasIdempotencyKey = %v, want %v", tc.cmd, got, tc.key)
		}
		if tc.warning != "" && !strings.Contains(fmt.Sprint(s.AllWarnings()), tc.warning) {
			t.Errorf("%s: warnings %v lack %q", tc.cmd, s.AllWarnings(), tc.warning)
		}
	}
}

func TestUnsafeMethodRefused(t *testing.T) {
	for _, m := range []string{"X\ntouch /tmp/x;", `A"B`, "P%dOST", "GET;rm", `\u000a`} {
		s, err := Parse("curl -X " + shellQuote(m) + " http://x/")
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		r := s.Requests[0]
		if r.Method != "GET" {
			t.Errorf("-X %q: method %q, want curl's own choice GET", m, r.Method)
		}
		if !strings.Contains(fmt.Sprint(s.AllWarnings()), "not an HTTP method") {
			t.Errorf("-X %q: no warning: %v", m, s.AllWarnings())
		}
	}
	s, _ := Parse("curl -X PURGE http://x/")
	if s.Requests[0].Method != "PURGE" {
		t.Errorf("a plain custom method was refused: %q", s.Requests[0].Method)
	}
}

// shellQuote quotes s for the shell: $'...' with escapes.
func shellQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "$'" + r.Replace(s) + "'"
}

func TestMaxRedirsZeroAndUnlimitedWarn(t *testing.T) {
	for _, v := range []string{"0", "-1"} {
		s, err := Parse("curl -L --max-redirs " + v + " http://x/")
		if err != nil {
			t.Fatal(err)
		}
		if s.Requests[0].MaxRedirects != 0 || !strings.Contains(fmt.Sprint(s.AllWarnings()), "--max-redirs") {
			t.Errorf("--max-redirs %s: MaxRedirects %d, warnings %v", v, s.Requests[0].MaxRedirects, s.AllWarnings())
		}
	}
}

// curl -T FILE appends the file's base name, percent-encoded, to a URL
// that names no file: no path, or a path ending in '/'. Standard input
// (-T -) has no name to append.
func TestUploadAppendsFileName(t *testing.T) {
	tests := []struct{ src, url string }{
		{`curl -T report.txt http://h`, "http://h/report.txt"},
		{`curl -T report.txt http://h/`, "http://h/report.txt"},
		{`curl -T report.txt http://h/up/`, "http://h/up/report.txt"},
		{`curl -T report.txt 'http://h/up/?a=1'`, "http://h/up/report.txt?a=1"},
		{`curl -T report.txt 'http://h?a=1'`, "http://h/report.txt?a=1"},
		{`curl -T 'dir/a b+c.txt' http://h/d/`, "http://h/d/a%20b%2Bc.txt"},
		{`curl -T report.txt http://h/up/name`, "http://h/up/name"},
		{`curl -T - http://h/`, "http://h/"},
		{`curl -T report.txt http://h:8080`, "http://h:8080/report.txt"},
		{`curl -T report.txt h/`, "http://h/report.txt"},
		{`curl -T report.txt "$BASE/"`, "${BASE}/"},
		{`curl -T report.txt "http://h/$DIR"`, "http://h/${DIR}"},
	}
	for _, tt := range tests {
		r := parseOne(t, tt.src)
		if got := r.URL.String(); got != tt.url {
			t.Errorf("%s: URL = %q, want %q", tt.src, got, tt.url)
		}
	}
	r := parseOne(t, `curl -T "$F" http://h/`)
	if !hasWarning(r.Warnings, "variable") {
		t.Errorf("-T from a variable to a URL without a file name: warnings %v, want one", r.Warnings)
	}
}

// curl gives an uploaded form file a Content-Type from its own small table
// of extensions: from ;filename= first, then the local file's name, else
// application/octet-stream. A field read with '<' has none.
func TestFormFileContentType(t *testing.T) {
	tests := []struct{ arg, want string }{
		{"f=@photo.jpg", "image/jpeg"},
		{"f=@PHOTO.JPEG", "image/jpeg"},
		{"f=@dir/notes.txt", "text/plain"},
		{"f=@page.html", "text/html"},
		{"f=@song.mp3", "application/octet-stream"},
		{"f=@data", "application/octet-stream"},
		{"f=@notes.txt;filename=x.png", "image/png"},
		{"f=@notes.txt;filename=noext", "text/plain"},
		{"f=@notes.txt;type=text/csv", "text/csv"},
		{"f=<notes.txt", ""},
		{"f=value", ""},
	}
	for _, tt := range tests {
		r := parseOne(t, "curl -F '"+tt.arg+"' http://h")
		if got := r.Body.Parts[0].ContentType; got != tt.want {
			t.Errorf("-F %s: Content-Type %q, want %q", tt.arg, got, tt.want)
		}
	}
	r := parseOne(t, `curl -F "f=@$FILE" http://h`)
	if got := r.Body.Parts[0].ContentType; got != "application/octet-stream" || !hasWarning(r.Warnings, "variable") {
		t.Errorf("-F f=@$FILE: Content-Type %q, warnings %v; want application/octet-stream and a warning", got, r.Warnings)
	}
}

// curl -r/--range sends a Range header of bytes; an explicit -H Range wins.
func TestRange(t *testing.T) {
	tests := []struct{ src, want string }{
		{`curl --range 0-99 http://h`, "bytes=0-99"},
		{`curl -r 100- http://h`, "bytes=100-"},
		{`curl -r -500 http://h`, "bytes=-500"},
		{`curl -r 0-1,5-9 http://h`, "bytes=0-1,5-9"},
		{`curl -r 0-9 -H 'Range: bytes=5-6' http://h`, "bytes=5-6"},
		{`curl -r "$R" http://h`, "bytes=${R}"},
	}
	for _, tt := range tests {
		r := parseOne(t, tt.src)
		if v, ok := r.Header("Range"); !ok || v.String() != tt.want {
			t.Errorf("%s: Range %q, want %q", tt.src, v.String(), tt.want)
		}
	}
	for _, src := range []string{`curl -r abc http://h`, `curl -r - http://h`, `curl -r 0-9 -T f http://h/`} {
		r := parseOne(t, src)
		if _, ok := r.Header("Range"); ok || len(r.Warnings) == 0 {
			t.Errorf("%s: headers %v, warnings %v; want no Range and a warning", src, r.Headers, r.Warnings)
		}
	}
}

// -x, --socks5 and -U give the request a proxy; -b with a file name gives
// it a cookie file, read when the program runs.
func TestProxyAndCookieFiles(t *testing.T) {
	tests := []struct{ src, url, user, pass string }{
		{`curl -x proxy:3128 http://h`, "http://proxy:3128", "", ""},
		{`curl -x http://proxy:3128 -U u:p http://h`, "http://proxy:3128", "u", "p"},
		{`curl --proxy https://proxy http://h`, "https://proxy", "", ""},
		{`curl -x socks5h://s:1080 http://h`, "socks5h://s:1080", "", ""},
		{`curl --socks5 s:1080 http://h`, "socks5://s:1080", "", ""},
		{`curl --socks5-hostname s:1080 --proxy-user "u:$P" http://h`, "socks5h://s:1080", "u", "${P}"},
		{`curl -x "$PROXY" http://h`, "${PROXY}", "", ""},
	}
	for _, tt := range tests {
		r := parseOne(t, tt.src)
		if r.Proxy == nil {
			t.Errorf("%s: no proxy", tt.src)
			continue
		}
		if got := r.Proxy.URL.String(); got != tt.url || r.Proxy.User.String() != tt.user || r.Proxy.Password.String() != tt.pass {
			t.Errorf("%s: proxy %q user %q password %q, want %q %q %q", tt.src, got, r.Proxy.User.String(), r.Proxy.Password.String(), tt.url, tt.user, tt.pass)
		}
	}
	if r := parseOne(t, `curl -x '' http://h`); r.Proxy != nil {
		t.Errorf(`-x "": proxy %v, want none`, r.Proxy)
	}
	r := parseOne(t, `curl -b a=1 -b jar.txt -b other.txt http://h`)
	if want := []string{"jar.txt", "other.txt"}; !reflect.DeepEqual(r.CookieFiles, want) {
		t.Errorf("cookie files %q, want %q", r.CookieFiles, want)
	}
	if v, _ := r.Header("Cookie"); v.String() != "a=1" {
		t.Errorf("Cookie %q, want a=1", v.String())
	}
}
