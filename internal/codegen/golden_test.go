package codegen

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/internal/curl"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenCommands are representative curl commands; each is converted to
// every language and compared with testdata/NAME.EXT.
var goldenCommands = []struct {
	name, cmd string
	opts      Options
}{
	{"get", `curl https://api.example.com/items?page=2 -H 'Accept: application/json'`, Options{}},
	{"get_timeouts", `curl -sS --retry 5 --retry-delay 0.2 --retry-max-time 20 -m 3 --connect-timeout 1 -L --max-redirs 3 https://api.example.com/`, Options{}},
	{"post_form", `curl -X POST -u "$API_USER:$API_PASS" -d 'grant_type=client_credentials' -d scope=read https://auth.example.com/token`, Options{}},
	{"post_json_idempotent", `curl --json '{"amount": 100}' -H 'Idempotency-Key: 4f1c' -H "Authorization: Bearer $TOKEN" https://pay.example.com/charges`, Options{}},
	{"multipart", `curl -F name=report -F 'file=@report.pdf;type=application/pdf' -k https://files.example.com/upload`, Options{}},
	{"put_file", `curl -T data.bin -o out.txt https://files.example.com/data.bin`, Options{}},
	{"all_errors", `curl --retry-all-errors --retry 2 https://api.example.com/items`, Options{}},
	{"no_retry", `curl -H 'X-Trace: 1' https://api.example.com/`, Options{NoRetry: true}},
	{"post_location", `curl -L -d 'a=1' https://api.example.com/orders`, Options{}},
	{"host_header", `curl -H 'Host: example.test' http://127.0.0.1:8080/items`, Options{}},
	{"no_retry_location", `curl -L --max-redirs 2 https://api.example.com/`, Options{NoRetry: true}},
	{"user_from_env", `curl -u "$CREDS" https://api.example.com/me`, Options{}},
}

var extensions = map[string]string{"go": "go", "go-holdfast": "holdfast.go", "python": "py", "python-httpx": "httpx.py",
	"javascript": "js", "shell": "sh", "java": "java", "php": "php", "ruby": "rb", "c": "c", "rust": "rs"}

// asyncGoldens are the golden commands also generated with Options.Async
// for the languages that have an async variant, into
// testdata/NAME.async.EXT.
var asyncGoldens = []string{"get_timeouts", "post_json_idempotent", "post_location", "user_from_env"}

func TestGolden(t *testing.T) {
	for _, lang := range Languages() {
		for _, gc := range goldenCommands {
			t.Run(lang+"/"+gc.name, func(t *testing.T) {
				checkGolden(t, lang, gc.cmd, gc.opts, filepath.Join("testdata", gc.name+"."+extensions[lang]))
			})
		}
	}
	for _, lang := range asyncLanguages {
		for _, gc := range goldenCommands {
			if !slices.Contains(asyncGoldens, gc.name) {
				continue
			}
			opts := gc.opts
			opts.Async = true
			t.Run(lang+"/async/"+gc.name, func(t *testing.T) {
				checkGolden(t, lang, gc.cmd, opts, filepath.Join("testdata", gc.name+".async."+extensions[lang]))
			})
		}
	}
}

// checkGolden compares Generate(lang) of cmd with the golden file at path,
// or with -update writes it.
func checkGolden(t *testing.T, lang, cmd string, opts Options, path string) {
	t.Helper()
	s, err := curl.Parse(cmd)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Generate(lang, s.Requests[0], opts)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("Generate(%s, %+v) differs from %s (run go test -update and review the diff):\n%s", lang, opts, path, firstDiff(got, string(want)))
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + a + "\nwant: " + b
		}
	}
	return ""
}

// TestGenerateAsync: Options.Async is refused for a language without an
// async variant, and makes python-httpx an asyncio program.
func TestGenerateAsync(t *testing.T) {
	s, _ := curl.Parse("curl http://h")
	if _, err := Generate("python", s.Requests[0], Options{Async: true}); !errors.Is(err, ErrNoAsync) {
		t.Errorf("Generate(python, Async) error = %v, want ErrNoAsync", err)
	}
	src, err := Generate("httpx", s.Requests[0], Options{Async: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"httpx.AsyncClient(", "asyncio.run(main())", "await asyncio.sleep(wait)"} {
		if !strings.Contains(src, want) {
			t.Errorf("Generate(httpx, Async) has no %q", want)
		}
	}
}

func TestGenerateUnknownLanguage(t *testing.T) {
	s, _ := curl.Parse("curl http://h")
	if _, err := Generate("cobol", s.Requests[0], Options{}); err == nil {
		t.Error("Generate(cobol) succeeded, want ErrUnknownLanguage")
	}
}
