//go:build nometrics

package gateway

// requestMetrics is false in this build: requests are not counted, so
// that a benchmark can compare against the default build.
const requestMetrics = false
