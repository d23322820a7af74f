package kit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
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
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// testPKI is a CA with a server certificate (127.0.0.1, localhost) and a
// client certificate it signed, plus an unrelated CA, all as PEM files.
type testPKI struct {
	dir                         string
	ca, otherCA                 string
	serverCert, serverKey       string
	clientCert, clientKey       string
	caPool                      *x509.CertPool
	serverPair                  tls.Certificate
	garbage, missing, wrongPair string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{dir: dir, caPool: x509.NewCertPool()}
	write := func(name, typ string, der []byte) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	serial := int64(1)
	sign := func(tmpl, parent *x509.Certificate, pub, priv any) *x509.Certificate {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	caTmpl := func(cn string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	}
	caKey := newKey()
	ca := sign(caTmpl("kit test CA"), nil, &caKey.PublicKey, caKey)
	p.ca = write("ca.pem", "CERTIFICATE", ca.Raw)
	p.caPool.AddCert(ca)
	otherKey := newKey()
	p.otherCA = write("other-ca.pem", "CERTIFICATE", sign(caTmpl("other CA"), nil, &otherKey.PublicKey, otherKey).Raw)

	srvKey := newKey()
	srv := sign(&x509.Certificate{Subject: pkix.Name{CommonName: "server"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, &srvKey.PublicKey, caKey)
	p.serverCert = write("server.pem", "CERTIFICATE", srv.Raw)
	p.serverKey = write("server-key.pem", "EC PRIVATE KEY", keyDER(srvKey))
	var err error
	if p.serverPair, err = tls.LoadX509KeyPair(p.serverCert, p.serverKey); err != nil {
		t.Fatal(err)
	}
	cliKey := newKey()
	cli := sign(&x509.Certificate{Subject: pkix.Name{CommonName: "edge-client"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, &cliKey.PublicKey, caKey)
	p.clientCert = write("client.pem", "CERTIFICATE", cli.Raw)
	p.clientKey = write("client-key.pem", "EC PRIVATE KEY", keyDER(cliKey))

	p.garbage = filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(p.garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.missing = filepath.Join(dir, "missing.pem")
	p.wrongPair = p.clientKey // the server certificate with the client's key
	return p
}

// startTLSServer runs an https server on 127.0.0.1 with the given server
// settings; it asks for (and verifies against the CA) a client certificate
// and answers with the client certificate's common name.
func startTLSServer(t *testing.T, pki *testPKI, maxVersion uint16) *httptest.Server {
	t.Helper()
	cfg, err := ServerTLSConfig(ReadTLS(Read(pipeline.Params{"cert_file": pki.serverCert, "key_file": pki.serverKey})))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientAuth, cfg.ClientCAs, cfg.MaxVersion = tls.VerifyClientCertIfGiven, pki.caPool, maxVersion
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := "anonymous"
		if len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		_, _ = io.WriteString(w, cn)
	}))
	srv.TLS = cfg
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failing handshakes are the point of some cases
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TLSConfig against a real TLS listener: every setting has its effect.
func TestTLSConfigHandshakes(t *testing.T) {
	pki := newTestPKI(t)
	srv := startTLSServer(t, pki, 0)
	srv12 := startTLSServer(t, pki, tls.VersionTLS12)
	tests := []struct {
		name    string
		params  pipeline.Params
		server  *httptest.Server
		host    string // dial this host instead of 127.0.0.1
		want    string // the body: the client certificate's CN
		wantErr string // substring of the request error
	}{
		{name: "ca_file trusts the server", params: pipeline.Params{"ca_file": pki.ca}, want: "anonymous"},
		{name: "system roots do not know the test CA", params: nil, wantErr: "certificate signed by unknown authority"},
		{name: "another CA does not verify it", params: pipeline.Params{"ca_file": pki.otherCA}, wantErr: "certificate signed by unknown authority"},
		{name: "insecure_skip_verify accepts anything", params: pipeline.Params{"insecure_skip_verify": "true"}, want: "anonymous"},
		{name: "insecure is the same setting", params: pipeline.Params{"insecure": "yes"}, want: "anonymous"},
		{name: "client certificate (mTLS)", params: pipeline.Params{"ca_file": pki.ca, "cert_file": pki.clientCert, "key_file": pki.clientKey}, want: "edge-client"},
		{name: "server_name is verified", params: pipeline.Params{"ca_file": pki.ca, "server_name": "wrong.example"}, wantErr: "not wrong.example"},
		{name: "server_name replaces the dialled host", params: pipeline.Params{"ca_file": pki.ca, "server_name": "localhost"}, want: "anonymous"},
		{name: "default minimum TLS 1.2 talks to a 1.2 server", params: pipeline.Params{"ca_file": pki.ca}, server: srv12, want: "anonymous"},
		{name: "tls_min_version 1.3 refuses a 1.2 server", params: pipeline.Params{"ca_file": pki.ca, "tls_min_version": "1.3"}, server: srv12, wantErr: "protocol version"},
		{name: "tls_min_version 1.3 with a 1.3 server", params: pipeline.Params{"ca_file": pki.ca, "tls_min_version": "1.3"}, want: "anonymous"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Read(tc.params)
			tcfg := ReadTLS(s)
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			cfg, err := TLSConfig(tcfg)
			if err != nil {
				t.Fatal(err)
			}
			server := srv
			if tc.server != nil {
				server = tc.server
			}
			tr := &http.Transport{TLSClientConfig: cfg}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(server.URL)
			if tc.wantErr != "" {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded, want an error with %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if string(body) != tc.want {
				t.Fatalf("client seen as %q, want %q", body, tc.want)
			}
			if tc.params["tls_min_version"] == "1.3" && resp.TLS.Version != tls.VersionTLS13 {
				t.Fatalf("negotiated %x", resp.TLS.Version)
			}
		})
	}
}

// Mistakes are reported before any connection, each naming its setting.
func TestTLSConfigErrors(t *testing.T) {
	pki := newTestPKI(t)
	tests := []struct {
		name    string
		params  pipeline.Params
		server  bool
		wantErr string
	}{
		{name: "cert without key", params: pipeline.Params{"cert_file": pki.clientCert},
			wantErr: `cert_file "` + pki.clientCert + `": needs key_file (the certificate's private key) as well`},
		{name: "key without cert", params: pipeline.Params{"key_file": pki.clientKey},
			wantErr: `key_file "` + pki.clientKey + `": needs cert_file (the certificate) as well`},
		{name: "missing CA file", params: pipeline.Params{"ca_file": pki.missing},
			wantErr: `ca_file "` + pki.missing + `": no such file or directory`},
		{name: "CA file without certificates", params: pipeline.Params{"ca_file": pki.garbage},
			wantErr: `ca_file "` + pki.garbage + `": no PEM certificate found`},
		{name: "key of another certificate", params: pipeline.Params{"cert_file": pki.serverCert, "key_file": pki.wrongPair},
			wantErr: `cert_file "` + pki.serverCert + `": with key_file "` + pki.wrongPair + `": tls: private key does not match public key`},
		{name: "every problem at once", params: pipeline.Params{"ca_file": pki.garbage, "cert_file": pki.clientCert},
			wantErr: `ca_file "` + pki.garbage + `": no PEM certificate found` + "\n" +
				`cert_file "` + pki.clientCert + `": needs key_file (the certificate's private key) as well`},
		{name: "a server needs a certificate", params: pipeline.Params{"ca_file": pki.ca}, server: true,
			wantErr: `cert_file: a TLS listener needs cert_file and key_file`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			build := TLSConfig
			if tc.server {
				build = ServerTLSConfig
			}
			cfg, err := build(ReadTLS(Read(tc.params)))
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			for _, e := range pipeline.SplitErrors(err) {
				if pipeline.SettingOf(e) == "" {
					t.Errorf("%v names no setting", e)
				}
			}
		})
	}
	s := Read(pipeline.Params{"tls_min_version": "1.1"})
	ReadTLS(s)
	if err := s.Err(); err == nil || err.Error() != `tls_min_version "1.1": want 1.2 or 1.3 (did you mean "1.2"?)` {
		t.Fatalf("tls_min_version 1.1: %v", err)
	}
}

func TestTLSDefaultsAndIsSet(t *testing.T) {
	s := Read(nil)
	tt := ReadTLS(s)
	if tt.IsSet() {
		t.Fatal("no TLS settings, IsSet true")
	}
	cfg, err := TLSConfig(tt)
	if err != nil || cfg.MinVersion != tls.VersionTLS12 || cfg.RootCAs != nil || cfg.InsecureSkipVerify || len(cfg.Certificates) != 0 {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	if !ReadTLS(Read(pipeline.Params{"server_name": "h"})).IsSet() || !(TLS{CAFile: "x"}).IsSet() {
		t.Fatal("IsSet false with a TLS setting")
	}
	if k := strings.Join(s.Known(), ","); k != "ca_file,cert_file,key_file,insecure_skip_verify,insecure,server_name,tls_min_version" {
		t.Fatalf("known TLS settings: %s", k)
	}
}
