//go:build !nometrics

package gateway

// requestMetrics says whether the request path counts into the metrics.
// Always true but in a build with the nometrics tag, which exists to
// measure what the counting costs (bench/run.sh's holdfast-nometrics
// target).
const requestMetrics = true
