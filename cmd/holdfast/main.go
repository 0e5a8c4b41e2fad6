// Command holdfast is a reverse proxy and load balancer that keeps 502, 503
// and 504 away from users, and says exactly why when one must be returned.
// Run "holdfast help" for its commands.
package main

import (
	"os"

	"github.com/holdfast/holdfast/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
