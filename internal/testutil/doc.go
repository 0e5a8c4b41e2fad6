// Package testutil holds fixtures for tests: servers on loopback that fail
// in the ways real upstreams fail (refuse, hang, reset, close, answer
// garbage, send oversized headers, cut a body short, present bad
// certificates), a fake DNS server, and a counting backend.
//
// Every fixture binds 127.0.0.1:0, registers its cleanup with t.Cleanup
// (closing its listeners and waiting for its goroutines) and counts what it
// saw, so that a test can assert how many connections and requests reached
// the backend: the proof that a request was, or was not, delivered twice.
// Nothing here touches the network beyond loopback or the system resolver.
package testutil
