package codegen

import (
	"fmt"
	"strings"

	"github.com/holdfast/holdfast/internal/curl"
)

// pyText renders curl.Texts as Python expressions for the python and
// python-httpx programs, and records what the expressions call, so that
// the program imports and defines only that.
type pyText struct {
	usesOS     bool // os.environ
	readsFiles bool // read_file (pyReadFile)
	encodes    bool // urlencode (pyURLEncode)
}

// expr is t as a Python str expression: literals quoted, variables read
// from the environment (unset: empty), files read and values encoded when
// the program runs, as curl reads and encodes them.
func (x *pyText) expr(t curl.Text) string {
	if len(t) == 0 {
		return jsonQuote("")
	}
	parts := make([]string, 0, len(t))
	for _, s := range t {
		var v string
		switch {
		case s.Env != "":
			x.usesOS = true
			v = "os.environ.get(" + jsonQuote(s.Env) + ", \"\")"
		case s.File != "":
			x.readsFiles = true
			v = "read_file(" + jsonQuote(s.File) + ")"
			if !s.Encode {
				v += ".decode()"
			}
		default:
			parts = append(parts, jsonQuote(s.Lit))
			continue
		}
		if s.Encode {
			x.encodes = true
			v = "urlencode(" + v + ")"
		}
		parts = append(parts, v)
	}
	return strings.Join(parts, " + ")
}

// defs is the Python code of the functions the expressions call, in the
// order they were first needed.
func (x *pyText) defs() string {
	var b strings.Builder
	if x.readsFiles {
		b.WriteString(pyReadFile)
	}
	if x.encodes {
		b.WriteString(pyURLEncode)
	}
	return b.String()
}

// pyReadFile reads the file of --data-urlencode name@file and --url-query
// @file when the program runs.
const pyReadFile = `

def read_file(path):
    """The bytes of a file that curl reads when it runs ("-": standard
    input). As curl does, a file that cannot be read counts as empty, with
    a warning."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        print(f"warning: cannot read {path}: {err.strerror}; sending it empty, as curl does", file=sys.stderr)
        return b""
`

// pyURLEncode encodes as curl's --data-urlencode and --url-query do
// (curl.Escape): quote_plus with nothing safe leaves exactly ASCII
// letters, digits and -._~ as they are.
const pyURLEncode = `

def urlencode(value):
    """value (text, as UTF-8, or bytes) percent-encoded as curl
    --data-urlencode encodes it: every byte but ASCII letters, digits and
    -._~ as %XX, a space as "+"."""
    return quote_plus(value, safe="")
`

// pyDigest answers a Digest challenge (RFC 7616) as curl 7.88 does, for
// both Python programs: requests' HTTPDigestAuth and httpx.DigestAuth
// send the whole body before the challenge, where curl sends none.
const pyDigest = `

# One challenge parameter, name=value or name="quoted value", or a scheme
# name, which has no "=" after it.
AUTH_PARAM = re.compile(r'([^\s,=]+)(\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?')


def digest_challenge(values):
    """The parameters (names in lower case) of the first Digest challenge
    among the values of WWW-Authenticate headers, or None. One value may
    hold several challenges, each a scheme and its parameters."""
    for value in values:
        scheme, params = None, {}
        for name, has_value, raw in AUTH_PARAM.findall(value):
            if not has_value:
                if scheme == "digest":
                    return params
                scheme, params = name.lower(), {}
            elif raw.startswith('"'):
                params[name.lower()] = re.sub(r"\\(.)", r"\1", raw[1:-1])
            else:
                params[name.lower()] = raw
        if scheme == "digest":
            return params
    return None


def digest_authorization(values, method, uri, user, password):
    """The Authorization header that answers the Digest challenge among
    values (WWW-Authenticate headers) for method and uri, as curl makes
    it: MD5, MD5-sess, SHA-256 or SHA-256-sess, with qop "auth" when the
    challenge offers it, else RFC 2069's form. None when there is no
    Digest challenge, or one that curl does not answer either."""
    challenge = digest_challenge(values)
    if challenge is None or challenge.get("userhash", "").lower() == "true":
        return None
    algorithm = challenge.get("algorithm", "MD5")
    new_hash = {"md5": hashlib.md5, "sha-256": hashlib.sha256}.get(algorithm.lower().removesuffix("-sess"))
    if new_hash is None:
        return None

    def h(text):
        return new_hash(text.encode()).hexdigest()

    realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
    cnonce = secrets.token_hex(16)
    ha1 = h(f"{user}:{realm}:{password}")
    if algorithm.lower().endswith("-sess"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    quoted = user.replace("\\", "\\\\").replace('"', '\\"')
    fields = [f'username="{quoted}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in [qop.strip().lower() for qop in challenge.get("qop", "").split(",")]:
        response = h(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
        fields += [f'cnonce="{cnonce}"', "nc=00000001", "qop=auth"]
    else:
        response = h(f"{ha1}:{nonce}:{ha2}")
    fields.append(f'response="{response}"')
    if "opaque" in challenge:
        fields.append(f'opaque="{challenge["opaque"]}"')
    if "algorithm" in challenge:
        fields.append(f"algorithm={algorithm}")
    return "Digest " + ", ".join(fields)
`

// pyDigestComment is the comment on the code of --digest in both Python
// programs.
const pyDigestComment = `curl --digest: the request goes first without credentials and without a
# body; a 401 with a Digest challenge is answered by sending it again,
# whole, with the Authorization the challenge asks for.`

// pyScriptMain is the main() of a Python program that makes several
// requests, request_1() to request_N(), each of which raises
// RequestFailed when it fails.
func pyScriptMain(n int, async bool) string {
	var b strings.Builder
	def, await := "def", ""
	if async {
		def, await = "async def", "await "
	}
	b.WriteString("\n\nclass RequestFailed(Exception):\n    \"\"\"A request that failed: reported, and the next one still runs, as curl\n    goes on with its next URL.\"\"\"\n")
	fmt.Fprintf(&b, "\n\n%s main():\n    failed = False\n    for request in (", def)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "request_%d", i+1)
	}
	fmt.Fprintf(&b, "):\n        try:\n            %srequest()\n        except RequestFailed as err:\n", await)
	b.WriteString("            print(err, file=sys.stderr)\n            failed = True\n    if failed:\n        sys.exit(1)\n")
	return b.String()
}

// pyScriptDoc is the docstring of a program that makes n requests, with
// notes (lines, or "") as its last paragraph.
func pyScriptDoc(n int, notes string) string {
	if notes != "" {
		notes = "\n" + notes
	}
	return fmt.Sprintf("\"\"\"Generated by holdfast convert from a curl command line: %d requests, made in\norder by the functions below, each under its own retry policy. A request\nthat fails is reported and the next one still runs, as curl goes on with\nits next URL; the program then exits with status 1.\n%s\"\"\"\n\n", n, notes)
}

// pyRequestDoc is the docstring of the function that makes request i of
// n, r, under policy p, indented for a function body.
func pyRequestDoc(i, n int, r *curl.Request, p policy) string {
	lines := append([]string{fmt.Sprintf("Request %d of %d: %s %s", i+1, n, r.Method, r.URL.String()), ""}, p.summary(r)...)
	return strings.ReplaceAll("    \"\"\""+strings.Join(lines, "\n    ")+"\n    \"\"\"\n", "\n    \n", "\n\n")
}
