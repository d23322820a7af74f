package httpconn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// selfSigned writes a certificate for 127.0.0.1 (its own CA) and its key
// to dir and returns their paths and the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "aimdb-flow test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// https ingest (cert_file/key_file) -> https webhook verified with
// ca_file; a webhook whose certificate is not trusted fails at once (no
// retries) and is dead-lettered.
func TestHTTPSIngestAndWebhook(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := selfSigned(t, dir)

	var conns atomic.Int32
	hook := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	hook.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	hook.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted handshake fails by design
	hook.StartTLS()
	defer hook.Close()
	hookCA := filepath.Join(dir, "hook-ca.pem")
	if err := os.WriteFile(hookCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	bus := mem.NewBus()
	ingest := mustBuilder(t, "https://127.0.0.1:0", Config{TLS: kit.TLS{CertFile: certFile, KeyFile: keyFile}})
	g := pipeline.New().Connector("ingest", ingest).Connector("", mem.New(bus)).
		Connector("trusted", mustBuilder(t, hook.URL, Config{TLS: kit.TLS{CAFile: hookCA}})).
		Connector("untrusted", mustBuilder(t, hook.URL, Config{Backoff: fastRetry}))
	g.Record("r").From("ingest:///r", codec.JSON{})
	g.Pipeline("ok").From("r").To("trusted://a", codec.JSON{}).To("mem://delivered", codec.JSON{})
	g.Pipeline("bad").From("r").To("untrusted://b", codec.JSON{})
	g.DeadLetterTo("mem://dlq", codec.Raw{})
	delivered, c1 := bus.Subscribe("delivered", 10)
	defer c1()
	dlq, c2 := bus.Subscribe("dlq", 10)
	defer c2()
	start(t, g)

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	resp, err := client.Post("https://"+ingest.Addr().String()+"/r", "application/json", strings.NewReader(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.TLS == nil || resp.ProtoMajor != 2 {
		t.Fatalf("https ingest: %d %s (tls %v), want 202 over HTTP/2", resp.StatusCode, resp.Proto, resp.TLS != nil)
	}
	recvEnv(t, delivered) // the trusted webhook answered 200 first
	d := recvEnv(t, dlq)
	var dl pipeline.DeadLetter
	if err := json.Unmarshal(d.Payload, &dl); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dl.Error, "certificate") {
		t.Fatalf("dead letter error %q: want a certificate error", dl.Error)
	}
	// One connection per webhook connector: the untrusted one was not
	// retried (retries would have opened more).
	if n := conns.Load(); n != 2 {
		t.Fatalf("webhook server saw %d connections, want 2", n)
	}
}
