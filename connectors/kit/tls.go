package kit

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// TLS are the TLS settings every connector accepts (the union of what the
// HTTP, MQTT and Kafka connectors read):
//
//	ca_file               PEM bundle of the CAs that sign the server's certificate;
//	                      it replaces the system roots (default: system roots)
//	cert_file, key_file   a client certificate and its key (mTLS); for a
//	                      server (an https ingest endpoint), its certificate
//	insecure_skip_verify  skip verifying the server's certificate (tests only;
//	                      connectors log a warning); "insecure" is the same setting
//	server_name           the name to verify the certificate against and send
//	                      as SNI (default: the host of the endpoint)
//	tls_min_version       1.2 (default) or 1.3
type TLS struct {
	CAFile             string
	CertFile, KeyFile  string
	InsecureSkipVerify bool
	ServerName         string
	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13; 0 means 1.2.
	MinVersion uint16

	set bool // a TLS setting was given (ReadTLS)
}

// ReadTLS reads the TLS settings from s (see TLS). Files are checked (and
// cert_file without key_file refused) by TLSConfig and ServerTLSConfig.
func ReadTLS(s *Settings) TLS {
	var t TLS
	t.CAFile = s.String("ca_file", "")
	t.CertFile = s.String("cert_file", "")
	t.KeyFile = s.String("key_file", "")
	s.Alias("insecure_skip_verify", "insecure")
	t.InsecureSkipVerify = s.Bool("insecure_skip_verify", false)
	t.ServerName = s.String("server_name", "")
	t.MinVersion = Choose(s, "tls_min_version", uint16(0),
		Choice[uint16]{Name: "1.2", Value: tls.VersionTLS12}, Choice[uint16]{Name: "1.3", Value: tls.VersionTLS13})
	for _, k := range []string{"ca_file", "cert_file", "key_file", "insecure_skip_verify", "insecure", "server_name", "tls_min_version"} {
		if _, ok := s.p[k]; ok {
			t.set = true
		}
	}
	return t
}

// IsSet reports whether any TLS setting was given (read with ReadTLS) or
// set in the struct. Kafka, for instance, turns TLS on when it is.
func (t TLS) IsSet() bool {
	return t.set || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify || t.ServerName != "" || t.MinVersion != 0
}

// TLSConfig builds the client-side *tls.Config of t: it loads ca_file
// (every certificate in it; the pool replaces the system roots) and the
// client certificate, and sets ServerName, MinVersion (default TLS 1.2) and
// InsecureSkipVerify. Problems are *Error values naming the setting.
func TLSConfig(t TLS) (*tls.Config, error) {
	var errs Errors
	cfg := &tls.Config{
		MinVersion:         t.minVersion(),
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the user's explicit choice; connectors warn
	}
	if t.CAFile != "" {
		pool, err := loadPool(t.CAFile)
		if err != nil {
			errs = append(errs, &Error{Key: "ca_file", Value: t.CAFile, Err: err})
		}
		cfg.RootCAs = pool
	}
	if cert, err := t.keyPair(); err != nil {
		errs = append(errs, err)
	} else if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// ServerTLSConfig builds the *tls.Config of a TLS listener (an https
// ingest endpoint): cert_file and key_file are required; MinVersion as for
// TLSConfig. The caller sets NextProtos.
func ServerTLSConfig(t TLS) (*tls.Config, error) {
	if t.CertFile == "" && t.KeyFile == "" {
		return nil, &Error{Key: "cert_file", Err: errors.New("a TLS listener needs cert_file and key_file")}
	}
	cert, err := t.keyPair()
	if err != nil {
		return nil, Errors{err}
	}
	return &tls.Config{MinVersion: t.minVersion(), Certificates: []tls.Certificate{*cert}}, nil
}

func (t TLS) minVersion() uint16 {
	if t.MinVersion == 0 {
		return tls.VersionTLS12
	}
	return t.MinVersion
}

// keyPair loads the certificate and key, or returns nil when neither is set.
func (t TLS) keyPair() (*tls.Certificate, error) {
	switch {
	case t.CertFile == "" && t.KeyFile == "":
		return nil, nil
	case t.KeyFile == "":
		return nil, &Error{Key: "cert_file", Value: t.CertFile, Err: errors.New("needs key_file (the certificate's private key) as well")}
	case t.CertFile == "":
		return nil, &Error{Key: "key_file", Value: t.KeyFile, Err: errors.New("needs cert_file (the certificate) as well")}
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, &Error{Key: "cert_file", Value: t.CertFile, Err: fmt.Errorf("with key_file %q: %w", t.KeyFile, err)}
	}
	return &cert, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err // the path is shown with the setting
		}
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}
