package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Acks is the producer acknowledgement level.
type Acks int8

// Acknowledgement levels. AcksDefault inherits (from the connector, or
// AcksAll at the connector level).
const (
	AcksDefault Acks = iota
	AcksAll          // every in-sync replica has the record
	AcksOne          // the partition leader has the record
	AcksNone         // fire and forget: the record may be lost
)

func (a Acks) required() kafkago.RequiredAcks {
	switch a {
	case AcksOne:
		return kafkago.RequireOne
	case AcksNone:
		return kafkago.RequireNone
	}
	return kafkago.RequireAll
}

func parseAcks(s string) (Acks, error) {
	switch strings.ToLower(s) {
	case "all", "-1":
		return AcksAll, nil
	case "one", "1", "leader":
		return AcksOne, nil
	case "none", "0":
		return AcksNone, nil
	}
	return 0, fmt.Errorf("acks %q: want all, one or none", s)
}

// StartOffset tells where a consumer group starts on a partition that has
// no committed offset.
type StartOffset int8

// Start positions. StartDefault inherits (from the connector, or
// StartFirst at the connector level).
const (
	StartDefault StartOffset = iota
	StartFirst               // the oldest retained record
	StartLast                // only records produced after joining
)

func parseStart(s string) (StartOffset, error) {
	switch strings.ToLower(s) {
	case "first", "earliest", "oldest":
		return StartFirst, nil
	case "last", "latest", "newest":
		return StartLast, nil
	}
	return 0, fmt.Errorf("start_offset %q: want first or last", s)
}

func parseCompression(s string) (kafkago.Compression, error) {
	switch strings.ToLower(s) {
	case "none", "":
		return 0, nil
	case "gzip":
		return kafkago.Gzip, nil
	case "snappy":
		return kafkago.Snappy, nil
	case "lz4":
		return kafkago.Lz4, nil
	case "zstd":
		return kafkago.Zstd, nil
	}
	return 0, fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", s)
}

// WriterOptions configure the producer. Zero values inherit: from the
// connector for a link, from the defaults for the connector.
type WriterOptions struct {
	// Acks is the acknowledgement level (default AcksAll).
	Acks Acks
	// Compression is "none", "gzip", "snappy", "lz4" or "zstd" (default none).
	Compression string
	// BatchSize is the maximum number of records per produce request to one
	// partition (default 1000).
	BatchSize int
	// Linger is how long a partial batch waits for more records
	// (default 5ms).
	Linger time.Duration
}

func (w WriterOptions) merge(base WriterOptions) WriterOptions {
	if w.Acks == AcksDefault {
		w.Acks = base.Acks
	}
	if w.Compression == "" {
		w.Compression = base.Compression
	}
	if w.BatchSize == 0 {
		w.BatchSize = base.BatchSize
	}
	if w.Linger == 0 {
		w.Linger = base.Linger
	}
	return w
}

// ReaderOptions configure the per-partition fetchers of inbound links.
// Zero values inherit.
type ReaderOptions struct {
	// StartOffset applies to partitions without a committed offset
	// (default StartFirst).
	StartOffset StartOffset
	// MinBytes is the least data a fetch waits for (default 1).
	MinBytes int
	// MaxBytes bounds one fetch response (default 1 MiB).
	MaxBytes int
	// MaxWait bounds how long a fetch waits for MinBytes (default 500ms).
	MaxWait time.Duration
}

func (r ReaderOptions) merge(base ReaderOptions) ReaderOptions {
	if r.StartOffset == StartDefault {
		r.StartOffset = base.StartOffset
	}
	if r.MinBytes == 0 {
		r.MinBytes = base.MinBytes
	}
	if r.MaxBytes == 0 {
		r.MaxBytes = base.MaxBytes
	}
	if r.MaxWait == 0 {
		r.MaxWait = base.MaxWait
	}
	return r
}

// In are the typed options of an inbound link (kafka://TOPIC): the
// connector's reader settings, overridable per topic.
type In struct{ ReaderOptions }

// Out are the typed options of an outbound link: the connector's writer
// settings, overridable per link.
type Out struct{ WriterOptions }

// Config is the typed configuration of a Kafka connector.
type Config struct {
	// Brokers are the bootstrap broker addresses (host:port).
	Brokers []string
	// Group is the consumer group id; required when the connector has
	// inbound links.
	Group string
	// ClientID identifies the client to the brokers (default "aimdb-flow").
	ClientID string
	// TLS enables TLS when non-nil.
	TLS *tls.Config
	// SASL enables SASL authentication when non-nil (see package
	// github.com/segmentio/kafka-go/sasl/plain and .../scram).
	SASL sasl.Mechanism

	// CommitInterval is how often acknowledged offsets are committed
	// (default 1s). Commits also happen on rebalance and on Close.
	CommitInterval time.Duration
	// SessionTimeout, RebalanceTimeout and HeartbeatInterval tune the
	// consumer group membership (defaults 10s, 30s, 1s).
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	// RevokeTimeout bounds how long in-flight records of revoked
	// partitions may take to finish at a rebalance before they are
	// abandoned to the next owner (default RebalanceTimeout/2).
	RevokeTimeout time.Duration

	// Reader are the defaults for inbound links.
	Reader ReaderOptions
	// Writer are the defaults for outbound links.
	Writer WriterOptions
	// MaxInFlight bounds the records handed to the producer and not yet
	// confirmed (default 10000); PublishAsync blocks beyond it.
	MaxInFlight int
	// MaxAttempts is how often the producer tries a batch (default 5).
	MaxAttempts int
	// PublishTimeout bounds a produce request, including retries of
	// metadata lookups while the cluster is unreachable (default 30s).
	PublishTimeout time.Duration

	// OnAssign and OnRevoke, when set, are called with the partitions
	// (by topic) of each consumer group generation as it starts and after
	// it ended and committed. They run on the consumer's goroutines and
	// must not block.
	OnAssign, OnRevoke func(partitions map[string][]int)

	// Dial replaces the TCP dialer (tests use it to cut the network; it
	// may also route through a proxy).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

func (c *Config) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = "aimdb-flow"
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.RevokeTimeout <= 0 {
		c.RevokeTimeout = c.RebalanceTimeout / 2
	}
	c.Reader = c.Reader.merge(ReaderOptions{StartOffset: StartFirst, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 500 * time.Millisecond})
	c.Writer = c.Writer.merge(WriterOptions{Acks: AcksAll, Compression: "none", BatchSize: 1000, Linger: 5 * time.Millisecond})
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 10000
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 30 * time.Second
	}
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("broker %q: want host:port", b))
		}
	}
	if _, err := parseCompression(c.Writer.Compression); err != nil {
		errs = append(errs, err)
	}
	if c.Reader.MinBytes < 0 || c.Reader.MaxBytes < 0 || c.Writer.BatchSize < 0 {
		errs = append(errs, errors.New("sizes must not be negative"))
	}
	return errors.Join(errs...)
}

// ParseEndpoint parses "kafka://h1:9092,h2:9092" (optionally
// "kafka://user:pass@h1:9092", credentials then default to SASL PLAIN
// unless a sasl setting says otherwise) into broker addresses and
// credentials.
func ParseEndpoint(endpoint string) (brokers []string, user, pass string, err error) {
	rest, ok := strings.CutPrefix(endpoint, "kafka://")
	if !ok {
		return nil, "", "", fmt.Errorf("endpoint %q: want kafka://host:port[,host:port...]", endpoint)
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		ui := rest[:at]
		rest = rest[at+1:]
		u, p, _ := strings.Cut(ui, ":")
		if user, err = url.PathUnescape(u); err != nil {
			return nil, "", "", fmt.Errorf("endpoint: user: %w", err)
		}
		if pass, err = url.PathUnescape(p); err != nil {
			return nil, "", "", fmt.Errorf("endpoint: password: %w", err)
		}
	}
	for _, h := range strings.Split(rest, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if _, _, e := net.SplitHostPort(h); e != nil {
			h = net.JoinHostPort(h, "9092")
		}
		brokers = append(brokers, h)
	}
	if len(brokers) == 0 {
		return nil, "", "", fmt.Errorf("endpoint %q: no brokers", endpoint)
	}
	return brokers, user, pass, nil
}

// connectorParams are the settings a `connector NAME "kafka://..."`
// declaration accepts.
var connectorParams = []string{"group", "client_id", "tls", "ca_file", "cert_file", "key_file", "insecure",
	"sasl", "username", "password", "commit_interval", "start_offset", "min_bytes", "max_bytes", "max_wait",
	"batch_size", "linger", "acks", "compression", "session_timeout", "rebalance_timeout", "heartbeat_interval",
	"revoke_timeout", "max_in_flight", "max_attempts", "publish_timeout"}

// ConfigFromParams builds a Config from an endpoint URL and DSL settings.
// Every mistake is reported at once.
func ConfigFromParams(endpoint string, p pipeline.Params) (Config, error) {
	var cfg Config
	var errs []error
	brokers, user, pass, err := ParseEndpoint(endpoint)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Brokers = brokers
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	dur := func(k, v string) time.Duration {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%s %q: want a duration like 500ms or 2s", k, v))
		}
		return d
	}
	num := func(k, v string) int {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s %q: want a non-negative integer", k, v))
		}
		return n
	}
	boolean := func(k, v string) bool {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want true or false", k, v))
		}
		return b
	}
	var useTLS, insecure bool
	var caFile, certFile, keyFile, mech string
	for _, k := range keys {
		v := p[k]
		switch k {
		case "group":
			cfg.Group = v
		case "client_id":
			cfg.ClientID = v
		case "tls":
			useTLS = boolean(k, v)
		case "ca_file":
			caFile, useTLS = v, true
		case "cert_file":
			certFile, useTLS = v, true
		case "key_file":
			keyFile, useTLS = v, true
		case "insecure":
			insecure = boolean(k, v)
		case "sasl":
			mech = strings.ToLower(v)
		case "username":
			user = v
		case "password":
			pass = v
		case "commit_interval":
			cfg.CommitInterval = dur(k, v)
		case "start_offset":
			s, err := parseStart(v)
			if err != nil {
				errs = append(errs, err)
			}
			cfg.Reader.StartOffset = s
		case "min_bytes":
			cfg.Reader.MinBytes = num(k, v)
		case "max_bytes":
			cfg.Reader.MaxBytes = num(k, v)
		case "max_wait":
			cfg.Reader.MaxWait = dur(k, v)
		case "batch_size":
			cfg.Writer.BatchSize = num(k, v)
		case "linger":
			cfg.Writer.Linger = dur(k, v)
		case "acks":
			a, err := parseAcks(v)
			if err != nil {
				errs = append(errs, err)
			}
			cfg.Writer.Acks = a
		case "compression":
			if _, err := parseCompression(v); err != nil {
				errs = append(errs, err)
			}
			cfg.Writer.Compression = v
		case "session_timeout":
			cfg.SessionTimeout = dur(k, v)
		case "rebalance_timeout":
			cfg.RebalanceTimeout = dur(k, v)
		case "heartbeat_interval":
			cfg.HeartbeatInterval = dur(k, v)
		case "revoke_timeout":
			cfg.RevokeTimeout = dur(k, v)
		case "max_in_flight":
			cfg.MaxInFlight = num(k, v)
		case "max_attempts":
			cfg.MaxAttempts = num(k, v)
		case "publish_timeout":
			cfg.PublishTimeout = dur(k, v)
		default:
			errs = append(errs, fmt.Errorf("unknown setting %q (known: %s)", k, strings.Join(connectorParams, ", ")))
		}
	}
	if insecure && !useTLS {
		useTLS = true
	}
	if useTLS {
		tc, err := tlsConfig(caFile, certFile, keyFile, insecure)
		if err != nil {
			errs = append(errs, err)
		}
		cfg.TLS = tc
	}
	if mech == "" && user != "" {
		mech = "plain"
	}
	if mech != "" {
		m, err := saslMechanism(mech, user, pass)
		if err != nil {
			errs = append(errs, err)
		}
		cfg.SASL = m
	}
	return cfg, errors.Join(errs...)
}

func tlsConfig(caFile, certFile, keyFile string, insecure bool) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // insecure is the user's explicit choice
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %q: no PEM certificates", caFile)
		}
		tc.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("cert_file and key_file go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func saslMechanism(mech, user, pass string) (sasl.Mechanism, error) {
	if user == "" {
		return nil, fmt.Errorf("sasl %s: username is required", mech)
	}
	switch mech {
	case "plain":
		return plain.Mechanism{Username: user, Password: pass}, nil
	case "scram-sha-256":
		m, err := scram.Mechanism(scram.SHA256, user, pass)
		if err != nil {
			return nil, fmt.Errorf("sasl: %w", err)
		}
		return m, nil
	case "scram-sha-512":
		m, err := scram.Mechanism(scram.SHA512, user, pass)
		if err != nil {
			return nil, fmt.Errorf("sasl: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("sasl %q: want plain, scram-sha-256 or scram-sha-512", mech)
}

// linkParams are the per-link settings.
var (
	inParams  = []string{"start_offset", "min_bytes", "max_bytes", "max_wait"}
	outParams = []string{"acks", "compression", "batch_size", "linger"}
)

func parseIn(p pipeline.Params) (In, error) {
	var o In
	var errs []error
	for k, v := range p {
		var err error
		switch k {
		case "start_offset":
			o.StartOffset, err = parseStart(v)
		case "min_bytes":
			o.MinBytes, err = strconv.Atoi(v)
		case "max_bytes":
			o.MaxBytes, err = strconv.Atoi(v)
		case "max_wait":
			o.MaxWait, err = time.ParseDuration(v)
		default:
			err = fmt.Errorf("unknown inbound setting %q (known: %s)", k, strings.Join(inParams, ", "))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	return o, errors.Join(errs...)
}

func parseOut(p pipeline.Params) (Out, error) {
	var o Out
	var errs []error
	for k, v := range p {
		var err error
		switch k {
		case "acks":
			o.Acks, err = parseAcks(v)
		case "compression":
			_, err = parseCompression(v)
			o.Compression = v
		case "batch_size":
			o.BatchSize, err = strconv.Atoi(v)
		case "linger":
			o.Linger, err = time.ParseDuration(v)
		default:
			err = fmt.Errorf("unknown outbound setting %q (known: %s)", k, strings.Join(outParams, ", "))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	return o, errors.Join(errs...)
}

// validTopic reports whether s is a legal Kafka topic name.
func validTopic(s string) error {
	if s == "" {
		return errors.New("empty topic name")
	}
	if len(s) > 249 {
		return errors.New("topic name longer than 249 characters")
	}
	if s == "." || s == ".." {
		return fmt.Errorf("topic name %q is reserved", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic %q: invalid character %q (allowed: letters, digits, '.', '_', '-')", s, r)
		}
	}
	return nil
}
