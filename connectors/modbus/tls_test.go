package modbus_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/modbus"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// pki writes a CA and a certificate it signs for each name (server:
// 127.0.0.1; others: client certificates) into dir, as PEM files
// NAME.pem and NAME.key; the CA is ca.pem.
func pki(t *testing.T, dir string, names ...string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	for i, n := range names {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: n},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
		if n == "server" {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		write(n+".pem", "CERTIFICATE", der)
		write(n+".key", "EC PRIVATE KEY", kder)
	}
}

// TestTLSClientAndServer: a modbus+tls client polls a modbus+tls server
// (MBAPS, mutual TLS: each side verifies the other against its ca_file).
// A client whose certificate another CA signed never gets ready, and
// says why.
func TestTLSClientAndServer(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	pki(t, dir, "server", "client")
	pki(t, other, "client")
	port := strconv.Itoa(freePort(t))
	f := func(name string) string { return filepath.Join(dir, name) }
	srvB := builder(t, "modbus+tls://127.0.0.1:"+port, pipeline.Params{"mode": "server",
		"ca_file": f("ca.pem"), "cert_file": f("server.pem"), "key_file": f("server.key")})
	srv := build(t, srvB)
	wopts := linkOpts(t, srvB, pipeline.Outbound, "state", pipeline.Params{"field.level": "holding 0 float64"})
	if err := srv.Publish(context.Background(), "state", wopts, &pipeline.Envelope{Payload: []byte(`{"level":0.75}`)}); err != nil {
		t.Fatal(err)
	}
	cli := builder(t, "modbus+tls://127.0.0.1:"+port, pipeline.Params{
		"ca_file": f("ca.pem"), "cert_file": f("client.pem"), "key_file": f("client.key"), "reconnect_max": "100ms"})
	_, rec := serve(t, cli, "state", pipeline.Params{"field.level": "holding 0 float64", "interval": "20ms"})
	if !rec.waitPayload(15*time.Second, `{"level":0.75}`) {
		t.Fatalf("no record over TLS; got %q", rec.last())
	}
	stranger := builder(t, "modbus+tls://127.0.0.1:"+port, pipeline.Params{
		"ca_file": f("ca.pem"), "cert_file": filepath.Join(other, "client.pem"), "key_file": filepath.Join(other, "client.key"), "reconnect_max": "100ms"})
	c, srec := serve(t, stranger, "state", pipeline.Params{"field.level": "holding 0 float64", "interval": "20ms"})
	var why error
	if !waitFor(15*time.Second, func() bool {
		why = c.(pipeline.Readiness).Ready()
		return why != nil && !strings.Contains(why.Error(), "not connected yet")
	}) {
		t.Fatalf("readiness of a client the server refuses: %v", why)
	}
	t.Logf("refused client: %v", why)
	if n := len(srec.all()); n != 0 {
		t.Fatalf("the refused client dispatched %d records", n)
	}
}

// TestTLSSettings: modbus+tls needs all three files, and refuses what the
// library cannot honour.
func TestTLSSettings(t *testing.T) {
	for _, tc := range []struct {
		p    pipeline.Params
		want string
	}{
		{pipeline.Params{"ca_file": "/x"}, "cert_file: modbus+tls (MBAPS) is mutual TLS: give cert_file and key_file"},
		{pipeline.Params{"cert_file": "/c", "key_file": "/k"}, "ca_file: modbus+tls (MBAPS) verifies the other side"},
		{pipeline.Params{"cert_file": "/c", "key_file": "/k", "ca_file": "/x", "insecure": "true"}, "not supported by the modbus library"},
		{pipeline.Params{"cert_file": "/nonexistent.pem", "key_file": "/k", "ca_file": "/nonexistent-ca.pem"}, "no such file"},
	} {
		_, err := modbus.Factory("modbus+tls://127.0.0.1:802", tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.p, err, tc.want)
		}
	}
	if _, err := modbus.Factory("modbus://127.0.0.1:502", pipeline.Params{"ca_file": "/x"}); err == nil || !strings.Contains(err.Error(), "need a modbus+tls:// endpoint") {
		t.Errorf("TLS settings on a plain endpoint: %v", err)
	}
}
