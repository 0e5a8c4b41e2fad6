// Package cachetests runs the public HTTP cache test suite (the npm package
// http-cache-tests, whose results cache-tests.fyi shows) against holdfast,
// through bench/cache-tests/run.sh, and holds the number of required
// failures to the one recorded in bench/cache-tests/threshold. The package
// has only that test; bench/cache-tests/README.md describes the suite, the
// script and how to read the results.
package cachetests
