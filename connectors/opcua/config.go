package opcua

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Scheme is the endpoint scheme of OPC UA servers (binary TCP).
const Scheme = "opc.tcp"

// Defaults of the connector settings.
const (
	DefaultDialTimeout    = 10 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultSessionTimeout = 30 * time.Minute
)

// Security policies (the policy URIs are in SecurityPolicyURI).
const (
	PolicyNone           = "None"
	PolicyBasic256Sha256 = "Basic256Sha256"
)

// Config configures an OPC UA client connector.
type Config struct {
	// Endpoint is the server's endpoint URL (opc.tcp://host:port/path).
	Endpoint string
	// Policy is PolicyNone or PolicyBasic256Sha256; Mode is "None",
	// "Sign" or "SignAndEncrypt" (default: None with policy None, else
	// SignAndEncrypt).
	Policy, Mode string
	// CertFile and KeyFile are the client's certificate (PEM or DER) and
	// RSA private key (PEM). With a policy other than None and neither
	// given, a self-signed certificate is generated at start (kept in
	// memory). With both given and missing, one is generated and written
	// there on first run.
	CertFile, KeyFile string
	// Username and Password select the username identity; without a
	// username the session is anonymous.
	Username string
	Password kit.Secret
	// DialTimeout bounds a connect; RequestTimeout one service call;
	// SessionTimeout is the session lifetime asked of the server.
	DialTimeout, RequestTimeout, SessionTimeout time.Duration
	// Backoff paces reconnects.
	Backoff pipeline.Backoff
}

func (c *Config) defaults() {
	if c.Policy == "" {
		c.Policy = PolicyNone
	}
	if c.Mode == "" {
		c.Mode = "None"
		if c.Policy != PolicyNone {
			c.Mode = "SignAndEncrypt"
		}
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
}

// check reports a policy/mode combination the server cannot offer.
func (c *Config) check() error {
	switch {
	case c.Policy == PolicyNone && c.Mode != "None":
		return fmt.Errorf("security_mode %s needs security_policy %s", c.Mode, PolicyBasic256Sha256)
	case c.Policy != PolicyNone && c.Mode == "None":
		return fmt.Errorf("security_policy %s needs security_mode Sign or SignAndEncrypt", c.Policy)
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("cert_file and key_file go together")
	}
	return nil
}

// ParseConfig reads a connector declaration: the endpoint URL and its
// settings, every mistake reported at once.
func ParseConfig(endpoint string, params pipeline.Params) (Config, error) {
	var errs []error
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("opcua endpoint: %w", err))
	case u.Scheme != Scheme:
		errs = append(errs, fmt.Errorf("opcua endpoint %q: want opc.tcp://host:port[/path]", endpoint))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("opcua endpoint %q: no host (want opc.tcp://host:port)", endpoint))
	}
	s := kit.Read(params)
	cfg := Config{Endpoint: endpoint}
	cfg.Policy = s.Enum("security_policy", PolicyNone, PolicyNone, PolicyBasic256Sha256)
	defMode := "None"
	if cfg.Policy != PolicyNone {
		defMode = "SignAndEncrypt"
	}
	cfg.Mode = s.Enum("security_mode", defMode, "None", "Sign", "SignAndEncrypt")
	cfg.CertFile = s.String("cert_file", "")
	cfg.KeyFile = s.String("key_file", "")
	cfg.Username = s.String("username", "")
	cfg.Password = s.Secret("password")
	cfg.DialTimeout = s.DurationIn("dial_timeout", DefaultDialTimeout, time.Millisecond, time.Hour)
	cfg.RequestTimeout = s.DurationIn("request_timeout", DefaultRequestTimeout, time.Millisecond, time.Hour)
	cfg.SessionTimeout = s.DurationIn("session_timeout", DefaultSessionTimeout, time.Second, 24*time.Hour)
	if err := s.Err(); err != nil {
		errs = append(errs, err)
	} else if err := cfg.check(); err != nil {
		errs = append(errs, fmt.Errorf("opcua: %w", err))
	}
	if cfg.Password.IsSet() && cfg.Username == "" {
		errs = append(errs, errors.New("opcua: password without username"))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Factory builds an OPC UA connector from a DSL declaration (registered
// for the opc.tcp scheme).
func Factory(endpoint string, params pipeline.Params) (pipeline.Builder, error) {
	cfg, err := ParseConfig(endpoint, params)
	if err != nil {
		return nil, err
	}
	return New(cfg), nil
}
