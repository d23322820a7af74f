package modbus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
)

// tlsMaterial is what the modbus library takes for MBAPS (Modbus/TCP
// Security): a certificate of our own and the CAs of the other side.
type tlsMaterial struct {
	cert *tls.Certificate
	pool *x509.CertPool
}

// tlsParts loads cfg.TLS for modbus+tls. MBAPS is mutual TLS, so both
// sides need a certificate and the other side's CA; the library builds
// the tls.Config itself (TLS 1.2 or later, server name from the
// endpoint), so server_name, insecure_skip_verify and tls_min_version
// are refused rather than ignored.
func tlsParts(cfg Config) (tlsMaterial, error) {
	var errs kit.Errors
	t := cfg.TLS
	if t.CertFile == "" || t.KeyFile == "" {
		errs = append(errs, &kit.Error{Key: "cert_file", Err: errors.New("modbus+tls (MBAPS) is mutual TLS: give cert_file and key_file")})
	}
	if t.CAFile == "" {
		errs = append(errs, &kit.Error{Key: "ca_file", Err: errors.New("modbus+tls (MBAPS) verifies the other side against ca_file: give it")})
	}
	if t.InsecureSkipVerify || t.ServerName != "" || t.MinVersion != 0 {
		errs = append(errs, &kit.Error{Key: "server_name", Err: errors.New("modbus+tls takes ca_file, cert_file and key_file only (server_name, insecure_skip_verify and tls_min_version are not supported by the modbus library)")})
	}
	if len(errs) > 0 {
		return tlsMaterial{}, errs
	}
	tc, err := kit.TLSConfig(t)
	if err != nil {
		return tlsMaterial{}, err
	}
	return tlsMaterial{cert: &tc.Certificates[0], pool: tc.RootCAs}, nil
}
