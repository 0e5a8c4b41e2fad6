package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/holdfast/holdfast/cause"
	"github.com/holdfast/holdfast/internal/upstream"
)

// The files shipped for monitoring holdfast, from this package's directory.
const (
	rulesFile     = "../../deploy/prometheus/holdfast.rules.yml"
	rulesTestFile = "../../deploy/prometheus/holdfast.rules.test.yml"
	dashboardFile = "../../deploy/grafana/holdfast.json"
	metricsDoc    = "../../docs/metrics.md"
)

// promtool returns the path of promtool. CI installs it and sets
// HOLDFAST_REQUIRE_TOOLS=1, so there a missing promtool is a failure;
// elsewhere the test skips.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("HOLDFAST_REQUIRE_TOOLS") == "1" {
			t.Fatal("promtool is not installed (apt-get install prometheus), and HOLDFAST_REQUIRE_TOOLS=1 asks for it")
		}
		t.Skip("promtool not found: apt-get install prometheus")
	}
	return path
}

// TestShippedRulesPass checks the shipped rules and runs their unit tests,
// which fire each alert on series that should fire it and keep it silent
// on series that should not.
func TestShippedRulesPass(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", rulesFile},
		{"test", "rules", rulesTestFile},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestShippedDashboardParses has promtool parse every query of the
// dashboard, as recording rules, with Grafana's variables replaced by
// values Prometheus takes.
func TestShippedDashboardParses(t *testing.T) {
	bin := promtool(t)
	vars := regexp.MustCompile(`\$\{?(\w+)\}?`)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range dashboardQueries(t) {
		expr := vars.ReplaceAllStringFunc(q.expr, func(v string) string {
			if strings.HasPrefix(strings.Trim(v, "${}"), "__") { // $__rate_interval, $__interval, $__range
				return "5m"
			}
			return ".*" // $job, $route...: used only in regular expression matchers
		})
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: expr})
	}
	file := map[string]any{"groups": []map[string]any{{"name": "dashboard", "rules": rules}}}
	b, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules (the dashboard's queries): %v\n%s\n%s", err, out, b)
	}
}

// TestShippedNamesExist holds Names to what the registry exports, and the
// shipped rules, dashboard and reference to the names: a metric renamed in
// the code but not in an alert would leave the alert silent forever.
func TestShippedNamesExist(t *testing.T) {
	families := exportedFamilies(t)
	known := map[string]bool{}
	for _, n := range Names() {
		known[n] = true
	}

	t.Run("registry", func(t *testing.T) {
		for name := range families {
			if strings.HasPrefix(name, "holdfast_") && !known[name] {
				t.Errorf("the registry exports %s, which Names() lacks", name)
			}
		}
		for _, name := range Names() {
			if _, ok := families[name]; !ok {
				t.Errorf("Names() lists %s, which the registry did not export", name)
			}
		}
	})

	rules := shippedRules(t)
	records := map[string]bool{}
	for _, r := range rules {
		if r.Record != "" {
			records[r.Record] = true
		}
	}
	// check reports the names in expr that are neither holdfast's, nor a
	// recording rule's, nor the Go and process collectors'.
	check := func(t *testing.T, where, expr string) {
		t.Helper()
		for _, name := range metricNames(expr) {
			if !known[baseName(name, families)] && !records[name] &&
				!strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
				t.Errorf("%s: unknown metric %s in %q", where, name, expr)
			}
		}
	}
	t.Run("rules", func(t *testing.T) {
		if len(rules) == 0 {
			t.Fatal("no rules in " + rulesFile)
		}
		for _, r := range rules {
			where := r.Record + r.Alert
			check(t, where, r.Expr)
			// The queries the descriptions suggest must work too.
			for _, text := range r.Annotations {
				for _, name := range holdfastWord.FindAllString(text, -1) {
					if !known[baseName(name, families)] {
						t.Errorf("%s: its annotations name an unknown metric %s", where, name)
					}
				}
			}
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		queries := dashboardQueries(t)
		if len(queries) == 0 {
			t.Fatal("no queries in " + dashboardFile)
		}
		for _, q := range queries {
			check(t, q.where, q.expr)
		}
	})

	t.Run("documented", func(t *testing.T) {
		doc, err := os.ReadFile(metricsDoc)
		if err != nil {
			t.Fatal(err)
		}
		mentioned := map[string]bool{}
		for _, name := range holdfastWord.FindAllString(string(doc), -1) {
			name = baseName(name, families)
			if !known[name] {
				t.Errorf("%s mentions %s, which holdfast does not export", metricsDoc, name)
			}
			mentioned[name] = true
		}
		for _, name := range Names() {
			if !mentioned[name] {
				t.Errorf("%s is not described in %s", name, metricsDoc)
			}
		}
		// The reference's table gives each metric's type and labels:
		// | `holdfast_requests_total` | counter | `route`, `code`, `cause` | ...
		rows := regexp.MustCompile("(?m)^\\| `(holdfast_\\w+)` \\| (\\w+) \\| ([^|]*) \\|")
		listed := map[string]bool{}
		for _, m := range rows.FindAllStringSubmatch(string(doc), -1) {
			name, typ := m[1], m[2]
			labels := regexp.MustCompile("`(\\w+)`").FindAllStringSubmatch(m[3], -1)
			listed[name] = true
			f, ok := families[name]
			if !ok {
				continue // reported above
			}
			if typ != f.typ {
				t.Errorf("%s: the reference says %s, the registry exports a %s", name, typ, f.typ)
			}
			var got []string
			for _, l := range labels {
				got = append(got, l[1])
			}
			slices.Sort(got)
			if !slices.Equal(got, f.labels) {
				t.Errorf("%s: the reference gives the labels %v, the registry exports %v", name, got, f.labels)
			}
		}
		for _, name := range Names() {
			if !listed[name] {
				t.Errorf("%s has no row in the table of %s", name, metricsDoc)
			}
		}
	})
}

// exportedFamily is what a test needs to know of a gathered metric family.
type exportedFamily struct {
	typ    string   // counter, gauge, histogram...
	labels []string // sorted
}

// exportedFamilies returns the families a registry exports once each kind of
// series has something to show: a route, a pool, a server with active
// checks.
func exportedFamilies(t *testing.T) map[string]exportedFamily {
	t.Helper()
	pools := func() []upstream.PoolStatus {
		return []upstream.PoolStatus{{
			Name:      "p",
			Available: 1,
			Adaptive:  &upstream.LimitStatus{Limit: 20},
			Servers: []upstream.ServerStatus{{
				URL:             "http://a:1",
				State:           upstream.Up,
				Available:       true,
				Weight:          1,
				EffectiveWeight: 1,
				Active:          &upstream.ActiveStatus{Passed: 3, Failed: 1},
			}},
		}}
	}
	reg := New(Options{Pools: pools})
	reg.Route("r").Observe(200, cause.None, time.Millisecond)
	reg.Route("r").Cached("hit")
	reg.Pool("p").Retried(cause.ConnectionRefused)
	reg.Server("p", "http://a:1").Attempt(cause.None)
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]exportedFamily{}
	for _, mf := range mfs {
		f := exportedFamily{typ: strings.ToLower(mf.GetType().String())}
		if ms := mf.GetMetric(); len(ms) > 0 {
			for _, l := range ms[0].GetLabel() {
				f.labels = append(f.labels, l.GetName())
			}
		}
		slices.Sort(f.labels)
		out[mf.GetName()] = f
	}
	return out
}

// baseName is the family name of a series name: a histogram's _bucket,
// _sum and _count series belong to the histogram.
func baseName(name string, families map[string]exportedFamily) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && families[base].typ == "histogram" {
			return base
		}
	}
	return name
}

// holdfastWord finds holdfast's metric names in prose and templates.
var holdfastWord = regexp.MustCompile(`\bholdfast_[a-z0-9_]+`)

type shippedRule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Annotations map[string]string `yaml:"annotations"`
}

func shippedRules(t *testing.T) []shippedRule {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []shippedRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var rules []shippedRule
	for _, g := range file.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// dashboardQuery is one PromQL query of the dashboard, with where it is.
type dashboardQuery struct{ where, expr string }

// dashboardPanel is the part of a Grafana panel that holds queries. Rows
// that are collapsed keep their panels inside them.
type dashboardPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"`
}

// dashboardQueries reads the dashboard, checks what Grafana needs to
// import it and returns every query: the panels' targets, the
// annotations' and the variables'.
func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID           string           `json:"uid"`
		Title         string           `json:"title"`
		SchemaVersion int              `json:"schemaVersion"`
		Panels        []dashboardPanel `json:"panels"`
		Annotations   struct {
			List []struct {
				Name string `json:"name"`
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("dashboard uid %q, title %q, schemaVersion %d: want a uid, a title and schemaVersion 36 or later", d.UID, d.Title, d.SchemaVersion)
	}

	var qs []dashboardQuery
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type == "datasource" {
			continue
		}
		// The query is a string, or an object holding it (as Grafana 10
		// saves it).
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var o struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &o); err != nil {
				t.Errorf("variable %s: query: %v", v.Name, err)
			}
			q = o.Query
		}
		// label_values(SELECTOR, LABEL) is Grafana's; its selector is PromQL.
		sel, ok := strings.CutPrefix(q, "label_values(")
		if i := strings.LastIndex(sel, ","); ok && i > 0 {
			qs = append(qs, dashboardQuery{"variable " + v.Name, sel[:i]})
		} else {
			t.Errorf("variable %s: query %q, want label_values(SELECTOR, LABEL)", v.Name, q)
		}
	}
	if !vars["datasource"] {
		t.Error("the dashboard has no datasource variable: importing it would tie it to one data source")
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			qs = append(qs, dashboardQuery{"annotation " + a.Name, a.Expr})
		}
	}

	ids := map[int]string{}
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			where := "panel " + p.Title
			if prev, ok := ids[p.ID]; ok || p.ID == 0 {
				t.Errorf("%s: id %d (also %q): ids must be set and unique", where, p.ID, prev)
			}
			ids[p.ID] = p.Title
			if g := p.GridPos; g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("%s: gridPos %+v outside Grafana's 24 columns", where, g)
			}
			if p.Type != "row" && (p.Datasource == nil || p.Datasource.UID != "${datasource}") {
				t.Errorf("%s: its data source is not ${datasource}", where)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("%s: refId %q is empty or repeated", where, tg.RefID)
				}
				refs[tg.RefID] = true
				qs = append(qs, dashboardQuery{where, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return qs
}

// The parts of PromQL that are not metric names, for metricNames.
var (
	promqlStrings = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlBraces  = regexp.MustCompile(`\{[^}]*\}`)  // label matchers
	promqlRanges  = regexp.MustCompile(`\[[^\]]*\]`) // ranges and subquery steps
	// Label lists: by (route), without (le), on (job, route), group_left (x).
	promqlLabelLists = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	// An identifier not preceded by a character that would make it part of
	// a number (1e9, offset 5m) or of a longer name.
	promqlIdent    = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	promqlKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true,
		"ignoring": true, "group_left": true, "group_right": true, "bool": true, "offset": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true,
	}
)

// metricNames returns the metric names an expression selects: what is
// left of it once strings, label matchers, ranges and label lists are
// gone, without function names (followed by a parenthesis, like sum,
// rate, histogram_quantile, topk) and keywords.
func metricNames(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, `""`)
	s = promqlBraces.ReplaceAllString(s, "{}")
	s = promqlRanges.ReplaceAllString(s, "[]")
	s = promqlLabelLists.ReplaceAllString(s, " ")
	var names []string
	for _, m := range promqlIdent.FindAllStringSubmatchIndex(s, -1) {
		name := s[m[2]:m[3]]
		if promqlKeywords[name] || strings.HasPrefix(strings.TrimLeft(s[m[3]:], " \t\n"), "(") {
			continue
		}
		names = append(names, name)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want []string
	}{
		{`sum by (route) (rate(holdfast_requests_total{code="502"}[5m]))`, []string{"holdfast_requests_total"}},
		{`histogram_quantile(0.99, sum by (route, le) (rate(holdfast_request_duration_seconds_bucket[5m])))`,
			[]string{"holdfast_request_duration_seconds_bucket"}},
		{`holdfast:requests_5xx:ratio_rate5m > 0.01 and on (job, route) holdfast:requests:rate5m >= 1e-1`,
			[]string{"holdfast:requests_5xx:ratio_rate5m", "holdfast:requests:rate5m"}},
		{`a > a offset 1m unless ignoring (result) b`, []string{"a", "a", "b"}},
		{`max_over_time((timestamp(x) and y)[1d:1m])`, []string{"x", "y"}},
		{`count(up{job=~"$job", route="sum(by)"} == 0) or vector(0)`, []string{"up"}},
		{`sum(rate(x[$__rate_interval])) by (pool) / on() group_left sum(z)`, []string{"x", "z"}},
	} {
		if got := metricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}
