package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TLSKind says what is wrong, if anything, with a [TLSBackend]'s certificate.
type TLSKind int

const (
	// TLSValid: signed by the test CA, valid now, for 127.0.0.1 and
	// localhost.
	TLSValid TLSKind = iota
	// TLSExpired: as TLSValid, but it expired an hour ago.
	TLSExpired
	// TLSWrongName: as TLSValid, but valid only for other.example.
	TLSWrongName
	// TLSUnknownAuthority: as TLSValid, but signed by a CA that Roots does
	// not hold.
	TLSUnknownAuthority
)

// String returns the kind's name, for subtest names.
func (k TLSKind) String() string {
	switch k {
	case TLSValid:
		return "valid"
	case TLSExpired:
		return "expired"
	case TLSWrongName:
		return "wrong_name"
	case TLSUnknownAuthority:
		return "unknown_authority"
	}
	return "unknown"
}

// TLSBackend is an HTTPS server on loopback with a certificate from a test
// CA made for it alone.
type TLSBackend struct {
	// URL is the base URL, https://127.0.0.1:port.
	URL string
	// Addr is the host:port it listens on.
	Addr string
	// Roots trusts the test CA that signed the server certificate (but not
	// the other CA of TLSUnknownAuthority).
	Roots *x509.CertPool
	// ClientCert is a client certificate signed by the test CA, which
	// [TLSRequireClientCert] accepts; the backends of [NewTLSBackend] do not
	// ask for one.
	ClientCert tls.Certificate
	// Requests counts requests that reached the handler, which means the
	// handshake succeeded.
	Requests atomic.Int64
}

// ClientConfig returns a TLS client configuration that trusts the test CA.
func (b *TLSBackend) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: b.Roots}
}

// NewTLSBackend starts an HTTPS server on 127.0.0.1 that serves h (a 200
// "ok" if h is nil) with a certificate of the given kind: the upstream whose
// certificate expired, was issued for another name, or was signed by a
// private CA that the proxy does not trust. It speaks HTTP/2 to clients
// that offer it (ForceAttemptHTTP2) and HTTP/1.1 to the others. Handshake
// errors, which these fixtures exist to cause, are not logged.
func NewTLSBackend(t testing.TB, kind TLSKind, h http.Handler) *TLSBackend {
	t.Helper()
	return newTLSBackend(t, kind, h, false)
}

// TLSRequireClientCert starts a valid HTTPS server that demands a client
// certificate signed by the test CA ([TLSBackend.ClientCert]): an upstream
// with mutual TLS, which answers a client without that certificate with a
// TLS alert.
func TLSRequireClientCert(t testing.TB) *TLSBackend {
	t.Helper()
	return newTLSBackend(t, TLSValid, nil, true)
}

func newTLSBackend(t testing.TB, kind TLSKind, h http.Handler, mutual bool) *TLSBackend {
	t.Helper()
	now := time.Now()
	ca := newCA(t, "holdfast test CA", now)
	signer := ca
	if kind == TLSUnknownAuthority {
		signer = newCA(t, "holdfast unknown CA", now)
	}
	leaf := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
	}
	switch kind {
	case TLSExpired:
		leaf.NotBefore = now.Add(-48 * time.Hour)
		leaf.NotAfter = now.Add(-time.Hour)
	case TLSWrongName:
		leaf.Subject.CommonName = "other.example"
		leaf.IPAddresses = nil
		leaf.DNSNames = []string{"other.example"}
	}
	b := &TLSBackend{Roots: x509.NewCertPool()}
	b.Roots.AddCert(ca.cert)
	b.ClientCert = ca.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "holdfast test client"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})

	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.Requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{signer.issue(t, leaf)},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if mutual {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = b.Roots
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	b.Addr = srv.Listener.Addr().String()
	return b
}

// testCA is a certificate authority that lives for one fixture.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t testing.TB, name string, now time.Time) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-72 * time.Hour),
		NotAfter:              now.Add(72 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testutil: create CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testutil: parse CA: %v", err)
	}
	return &testCA{cert: cert, key: key}
}

// issue signs tmpl with a fresh key and returns it as a tls.Certificate
// with its chain up to (not including) the CA.
func (ca *testCA) issue(t testing.TB, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("testutil: issue %q: %v", tmpl.Subject.CommonName, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testutil: generate key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("testutil: serial: %v", err)
	}
	return n
}
