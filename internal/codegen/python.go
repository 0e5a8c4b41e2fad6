package codegen

import (
	"fmt"
	"slices"
	"strings"

	"github.com/holdfast/holdfast/internal/curl"
)

// genPython writes a Python 3 program that uses requests, with urllib3's
// Retry mounted on a Session: the retry policy is urllib3's own, adjusted
// for full jitter and a cap in a small subclass.
func genPython(r *curl.Request, p policy) string {
	// main() is written first, so that the imports can follow what it
	// uses: os only for an environment variable or a file name, as an
	// unused import is what linters flag first in a generated file.
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	usesOS := false
	str := func(t curl.Text) string {
		return textExpr(t, jsonQuote, func(v string) string {
			usesOS = true
			return "os.environ.get(" + jsonQuote(v) + ", \"\")"
		}, " + ")
	}
	w("def main():\n")
	w("    method = %s\n", jsonQuote(r.Method))
	w("    url = %s\n", str(r.URL))
	hs := headers(r)
	if len(hs) > 0 {
		w("    headers = {\n")
		for _, h := range hs {
			w("        %s: %s,\n", jsonQuote(h.Name), str(h.Value))
		}
		w("    }\n")
	} else {
		w("    headers = {}\n")
	}
	cookies := pyCookieSetup(w, r, str)
	args := []string{"method", "url", "headers=headers"}
	switch {
	case inlineBody(r):
		w("    data = (%s).encode()\n", str(r.Body.Data))
		args = append(args, "data=data")
	case r.Body.Kind == curl.BodyFile:
		if r.Body.File.String() == "-" {
			w("    data = sys.stdin.buffer.read()\n")
		} else {
			w("    with open(%s, \"rb\") as f:\n        data = f.read()\n", str(r.Body.File))
		}
		if r.Body.StripNewlines {
			w("    # curl -d @file drops carriage returns and newlines.\n")
			w("    data = data.replace(b\"\\r\", b\"\").replace(b\"\\n\", b\"\")\n")
		}
		args = append(args, "data=data")
	case r.Body.Kind == curl.BodyMultipart:
		w("    files = [\n")
		for _, part := range r.Body.Parts {
			switch {
			case len(part.File) > 0 && part.FileAsValue:
				w("        (%s, (None, open(%s, \"rb\").read())),\n", jsonQuote(part.Name), str(part.File))
			case len(part.File) > 0:
				var fn string
				if part.Filename != "" {
					fn = jsonQuote(part.Filename)
				} else {
					fn, usesOS = "os.path.basename("+str(part.File)+")", true
				}
				ct := "application/octet-stream"
				if part.ContentType != "" {
					ct = part.ContentType
				}
				w("        (%s, (%s, open(%s, \"rb\").read(), %s)),\n", jsonQuote(part.Name), fn, str(part.File), jsonQuote(ct))
			default:
				w("        (%s, (None, %s)),\n", jsonQuote(part.Name), str(part.Value))
			}
		}
		w("    ]\n")
		args = append(args, "files=files")
	}
	switch {
	case r.Auth != nil && r.Auth.SplitAtRunTime:
		w("    # %s\n", splitComment)
		w("    user, _, password = %s.partition(\":\")\n", parens(str(r.Auth.User), len(r.Auth.User) > 1))
		args = append(args, "auth=(user, password)")
	case r.Auth != nil:
		args = append(args, fmt.Sprintf("auth=(%s, %s)", str(r.Auth.User), str(r.Auth.Password)))
	}
	switch {
	case p.AttemptTimeout > 0 && p.ConnectTimeout > 0:
		args = append(args, fmt.Sprintf("timeout=(%s, %s)", pyFloat(p.ConnectTimeout.Seconds()), pyFloat(p.AttemptTimeout.Seconds())))
	case p.AttemptTimeout > 0:
		args = append(args, fmt.Sprintf("timeout=%s", pyFloat(p.AttemptTimeout.Seconds())))
	case p.ConnectTimeout > 0:
		args = append(args, fmt.Sprintf("timeout=(%s, None)", pyFloat(p.ConnectTimeout.Seconds())))
	}
	args = append(args, fmt.Sprintf("allow_redirects=%s", pyBool(r.FollowRedirects)))
	usesQuote := false
	if r.Proxy != nil {
		usesQuote = pyProxyURL(w, r, str, true)
		w("    # Given for both schemes: requests fills in from HTTP_PROXY, HTTPS_PROXY\n")
		w("    # and ALL_PROXY only the schemes left out, and NO_PROXY never removes it.\n")
		w("    proxies = {\"http\": proxy, \"https\": proxy}\n")
		args = append(args, "proxies=proxies")
	}
	session := "requests.Session()"
	if cookies && r.FollowRedirects {
		session = "CookieFileSession(cookies, url, own_cookies)"
	}
	if r.Insecure {
		args = append(args, "verify=False  # curl -k: the certificate is not checked")
	}

	if p.Retry {
		allowed := "Retry.DEFAULT_ALLOWED_METHODS"
		if !r.Idempotent() && p.HasKey {
			allowed = fmt.Sprintf("Retry.DEFAULT_ALLOWED_METHODS | {%s}", jsonQuote(strings.ToUpper(r.Method)))
		}
		w("\n    # %s\n", safeComment(r, p))
		forcelist := "(502, 503, 504),"
		if p.AllErrors {
			forcelist = "range(400, 600),  # curl --retry-all-errors: every 4xx and 5xx"
		}
		w("    retry = JitterRetry(\n        total=%d,\n        status_forcelist=%s\n        allowed_methods=%s,\n", p.Attempts-1, forcelist, allowed)
		w("        respect_retry_after_header=True,\n        raise_on_status=False,\n    )\n")
		if p.MaxElapsed > 0 {
			w("    JitterRetry.deadline = time.monotonic() + %s  # curl --retry-max-time\n", pyFloat(p.MaxElapsed.Seconds()))
		}
		w("    session = %s\n", session)
		w("    session.mount(\"http://\", HTTPAdapter(max_retries=retry))\n")
		w("    session.mount(\"https://\", HTTPAdapter(max_retries=retry))\n")
		if r.FollowRedirects {
			w("    session.max_redirects = %d  # curl -L --max-redirs (curl's default: 50)\n", maxRedirs(r))
		}
		w("\n    try:\n        response = session.request(\n")
	} else if r.FollowRedirects {
		w("\n    session = %s\n", session)
		w("    session.max_redirects = %d  # curl -L --max-redirs (curl's default: 50)\n", maxRedirs(r))
		w("\n    try:\n        response = session.request(\n")
	} else {
		w("\n    try:\n        response = requests.request(\n")
	}
	for _, a := range args {
		if i := strings.Index(a, "  #"); i >= 0 {
			w("            %s,%s\n", a[:i], a[i:])
			continue
		}
		w("            %s,\n", a)
	}
	w("        )\n    except requests.RequestException as err:\n        sys.exit(f\"request failed: {method} {url}: {err}\")\n\n")
	if r.Output != "" {
		w("    with open(%s, \"wb\") as out:\n        out.write(response.content)\n", jsonQuote(r.Output))
	} else {
		w("    sys.stdout.buffer.write(response.content)\n    sys.stdout.flush()\n")
	}
	w("    if response.status_code >= 400:\n        sys.exit(f\"request failed: {method} {url}: {response.status_code} {response.reason}\")\n")
	if cookies {
		if r.FollowRedirects {
			w("%s", pyCookieSession)
		}
		w("%s", pyCookieFiles)
	}
	w("\n\nif __name__ == \"__main__\":\n    main()\n")

	var head strings.Builder
	h := func(format string, a ...any) { fmt.Fprintf(&head, format, a...) }
	h("\"\"\"Generated by holdfast convert from a curl command.\n\n")
	for _, l := range p.summary(r) {
		h("%s\n", l)
	}
	if scheme, known := pyProxyScheme(r); r.Proxy != nil && (!known || strings.HasPrefix(scheme, "socks")) {
		h("A SOCKS proxy needs PySocks (Debian: python3-socks; or pip install requests[socks]).\n")
	}
	h("\"\"\"\n\n")
	h("%s\n\n", pyImports(usesOS, p.Retry, cookies, usesQuote))
	if p.Retry {
		h("import requests\nfrom requests.adapters import HTTPAdapter\nfrom urllib3.exceptions import MaxRetryError, ResponseError\nfrom urllib3.util.retry import Retry\n\n\n")
		h(pyRetryClass, pyFloat(p.BaseDelay.Seconds()), pyFloat(p.MaxDelay.Seconds()), pyFloat(maxRetryAfter.Seconds()))
		h("\n\n\n")
	} else {
		h("import requests\n\n\n")
	}
	return head.String() + b.String()
}

const pyRetryClass = `class JitterRetry(Retry):
    """urllib3's Retry, waiting a random time between zero and a capped
    exponential step (full jitter), so that many clients do not retry in
    step; Retry-After is honoured for 502 and 504 as well as 503."""

    RETRY_AFTER_STATUS_CODES = frozenset({413, 429, 502, 503, 504})
    base_delay = %s
    max_delay = %s
    max_retry_after = %s
    deadline = None  # time.monotonic() after which no retry starts

    def get_backoff_time(self):
        failures = len(self.history)
        if failures == 0:
            return 0
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (failures - 1)))

    def get_retry_after(self, response):
        after = super().get_retry_after(response)
        if after is not None and after > self.max_retry_after:
            return None
        return after

    def increment(self, method=None, url=None, *args, **kwargs):
        response = kwargs.get("response")
        if response is not None:
            try:
                after = super().get_retry_after(response)
            except Exception:  # an unreadable Retry-After is no Retry-After
                after = None
            if after is not None and after > self.max_retry_after:
                # Too long to wait out: the retries end with this response.
                raise MaxRetryError(kwargs.get("_pool"), url, ResponseError("Retry-After too long to wait"))
        return super().increment(method, url, *args, **kwargs)

    def is_exhausted(self):
        late = self.deadline is not None and time.monotonic() > self.deadline
        return late or super().is_exhausted()`

func pyBool(v bool) string {
	if v {
		return "True"
	}
	return "False"
}

func pyFloat(f float64) string {
	s := fmt.Sprintf("%g", f)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// pythonLimits are what a requests program sends differently from curl.
func pythonLimits(r *curl.Request, _ policy) []curl.Warning {
	return upperCasedMethod(r, "requests")
}

// pyImports are the standard library imports of a requests program, in
// the sorted order of isort: plain imports, then from-imports.
func pyImports(usesOS, retry, cookies, usesQuote bool) string {
	mods := []string{"import sys"}
	if usesOS {
		mods = append(mods, "import os")
	}
	if retry {
		mods = append(mods, "import random", "import time")
	}
	var from []string
	if usesQuote {
		from = append(from, "quote")
	}
	if cookies {
		mods = append(mods, "import ipaddress", "import time")
		from = append(from, "urlsplit")
	}
	slices.Sort(mods)
	mods = slices.Compact(mods)
	if len(from) > 0 {
		mods = append(mods, "from urllib.parse import "+strings.Join(from, ", "))
	}
	return strings.Join(mods, "\n")
}

// pyCookieSession is the requests Session of a program that reads cookie
// files and follows redirects: requests drops the Cookie header on each
// redirect and fills it from its own cookie jar, where curl chooses the
// file's cookies again for the new URL.
const pyCookieSession = `

class CookieFileSession(requests.Session):
    """A Session that chooses the cookies of curl -b FILE again for each
    redirect hop, in place of requests' cookie jar; the command's own
    cookies go to the first host only."""

    def __init__(self, cookies, url, own_cookies):
        super().__init__()
        self.file_cookies, self.first, self.own_cookies = cookies, urlsplit(url), own_cookies

    def rebuild_auth(self, prepared_request, response):
        super().rebuild_auth(prepared_request, response)
        hop = urlsplit(prepared_request.url)
        same_host = (hop.hostname, hop.port) == (self.first.hostname, self.first.port)
        cookie = cookie_header(self.file_cookies, prepared_request.url, self.own_cookies if same_host else None)
        prepared_request.headers.pop("Cookie", None)
        if cookie:
            prepared_request.headers["Cookie"] = cookie
`
