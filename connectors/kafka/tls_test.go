package kafka_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	"github.com/twmb/franz-go/pkg/kfake"
)

// selfSigned returns a server certificate for 127.0.0.1 and the PEM of its
// (self-signed) certificate for clients to trust.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestTLS runs a consume -> produce pipeline over TLS, trusting the
// cluster's certificate through the ca_file setting.
func TestTLS(t *testing.T) {
	cert, caPEM := selfSigned(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"t-in": 1, "t-out": 1},
		TLS:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		Extra: []kfake.Opt{kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})}})
	cl.Produce(t, "t-in", kafkatest.Msg("k", "secret"))
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := kafka.Factory(cl.Endpoint(), pipeline.Params{"group": "tls", "ca_file": ca,
		"commit_interval": "100ms", "session_timeout": "2s", "heartbeat_interval": "200ms"})
	if err != nil {
		t.Fatal(err)
	}
	g := pipeline.New().Connector("kafka", b)
	g.Record("in").From("kafka://t-in", codec.Raw{})
	g.Pipeline("p").From("in").To("kafka://t-out", codec.Raw{})
	run := start(t, g, 5*time.Second)
	out := cl.Consume(t, "t-out", 1, 20*time.Second)
	if string(out[0].Value) != "secret" {
		t.Fatalf("got %q", out[0].Value)
	}
	waitCommittedToEnd(t, cl, "tls", "t-in")
	run.stop(t, false)
}
