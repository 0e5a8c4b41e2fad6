package probe

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"github.com/holdfast/holdfast/internal/config"
)

// Check is the health of one server of one pool, probed on its health path.
type Check struct {
	Pool   string `json:"pool"`
	Server string `json:"server"`
	Path   string `json:"path"`
	Result
}

// CheckConfig probes every server of every pool of cfg on the pool's health
// path (health.path, or "/" when none is set), with the pool's health
// method and expected status range, a few at a time.
func CheckConfig(ctx context.Context, cfg *config.Config, o Options) []Check {
	var checks []Check
	for _, u := range cfg.Upstreams {
		path := u.Health.Path
		if path == "" {
			path = "/"
		}
		for _, s := range u.Servers {
			checks = append(checks, Check{Pool: u.Name, Server: s.URL, Path: path})
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range checks {
		u := upstreamByName(cfg, checks[i].Pool)
		po := o
		if u.Health.Method != "" {
			po.Method = u.Health.Method
		}
		if u.Health.Path != "" {
			if lo, hi, err := config.ParseStatusRange(u.Health.Status); err == nil {
				po.Expect = func(s int) bool { return s >= lo && s <= hi }
			}
		}
		if u.Health.Timeout > 0 && o.Timeout == 0 {
			po.Timeout = u.Health.Timeout
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c := &checks[i]
			c.Result = Probe(ctx, strings.TrimSuffix(c.Server, "/")+c.Path, po)
		}()
	}
	wg.Wait()
	return checks
}

func upstreamByName(cfg *config.Config, name string) *config.Upstream {
	for _, u := range cfg.Upstreams {
		if u.Name == name {
			return u
		}
	}
	return &config.Upstream{Health: config.Health{Method: http.MethodGet}}
}
