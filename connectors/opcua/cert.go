package opcua

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
)

// applicationURI names the client to the server (it is in the generated
// certificate's subject alternative names, as OPC UA requires).
const applicationURI = "urn:aimdb-flow:client"

// clientCertificate loads the client certificate (DER) and key, or
// generates a self-signed pair: in memory when no files are given,
// written to certFile and keyFile when they do not exist yet.
func clientCertificate(certFile, keyFile string) ([]byte, *rsa.PrivateKey, error) {
	if certFile != "" {
		if _, err := os.Stat(certFile); err == nil {
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, nil, fmt.Errorf("cert_file/key_file: %w", err)
			}
			key, ok := pair.PrivateKey.(*rsa.PrivateKey)
			if !ok {
				return nil, nil, errors.New("key_file: OPC UA needs an RSA key")
			}
			return pair.Certificate[0], key, nil
		}
	}
	der, key, err := generate()
	if err != nil {
		return nil, nil, err
	}
	if certFile != "" {
		cp := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		kp := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		if err := os.WriteFile(keyFile, kp, 0o600); err != nil {
			return nil, nil, fmt.Errorf("key_file: %w", err)
		}
		if err := os.WriteFile(certFile, cp, 0o644); err != nil {
			return nil, nil, fmt.Errorf("cert_file: %w", err)
		}
	}
	return der, key, nil
}

// generate makes a self-signed RSA 2048 application certificate.
func generate() ([]byte, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	uri, _ := url.Parse(applicationURI)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "aimdb-flow", Organization: []string{"aimdb-flow"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment |
			x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{uri},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	return der, key, err
}

// opcuaFinal marks a configuration problem that reconnecting cannot fix.
func opcuaFinal(err error) error { return kit.Final(err) }
