package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
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
	c.Reader = c.Reader.merge(defaultReaderOptions())
	c.Writer = c.Writer.merge(defaultWriterOptions())
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
	} else if c.Reader.MinBytes > c.Reader.MaxBytes {
		errs = append(errs, fmt.Errorf("reader MinBytes %d is above MaxBytes %d", c.Reader.MinBytes, c.Reader.MaxBytes))
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

// ParseConfig builds a Config from an endpoint URL and DSL settings
// with the shared settings reader (connectors/kit: one grammar for
// durations, sizes, booleans and choices; the TLS settings of
// kit.ReadTLS). Every mistake is reported at once: problems with a
// setting as *kit.Error values naming it (so the DSL reports each at the
// setting), problems with the endpoint as plain errors.
func ParseConfig(endpoint string, p pipeline.Params) (Config, error) {
	var cfg Config
	brokers, user, pass, epErr := ParseEndpoint(endpoint)
	cfg.Brokers = brokers
	s := kit.Read(p)
	cfg.Group = s.String("group", "")
	cfg.ClientID = s.String("client_id", "")
	cfg.TLS = readTLS(s, p)
	cfg.SASL = readSASL(s, user, pass)
	cfg.CommitInterval = s.Duration("commit_interval", 0)
	cfg.Reader = readReader(s)
	checkFetchSizes(s, cfg.Reader, defaultReaderOptions())
	cfg.Writer = readWriter(s)
	cfg.SessionTimeout = s.Duration("session_timeout", 0)
	cfg.RebalanceTimeout = s.Duration("rebalance_timeout", 0)
	cfg.HeartbeatInterval = s.Duration("heartbeat_interval", 0)
	cfg.RevokeTimeout = s.Duration("revoke_timeout", 0)
	cfg.MaxInFlight = s.Int("max_in_flight", 0, 0, math.MaxInt)
	cfg.MaxAttempts = s.Int("max_attempts", 0, 0, math.MaxInt)
	cfg.PublishTimeout = s.Duration("publish_timeout", 0)
	err := s.Err()
	if epErr != nil {
		err = errors.Join(epErr, err)
	}
	return cfg, err
}

// readTLS reads tls and the kit's TLS settings and builds the client TLS
// configuration, or returns nil when TLS is off. TLS is on with tls true
// or when any TLS setting is given; tls false together with a TLS setting
// is a contradiction.
func readTLS(s *kit.Settings, p pipeline.Params) *tls.Config {
	given := s.Has("tls")
	v := s.Bool("tls", true) // true when absent or malformed (then reported)
	on, off := given && v, given && !v
	t := kit.ReadTLS(s)
	if off && t.IsSet() {
		var names []string
		for _, k := range []string{"ca_file", "cert_file", "key_file", "insecure_skip_verify", "insecure", "server_name", "tls_min_version"} {
			if _, ok := p[k]; ok {
				names = append(names, k)
			}
		}
		s.Errorf("tls", "contradicts %s (a TLS setting turns TLS on: remove tls false or the TLS settings)", strings.Join(names, ", "))
		return nil
	}
	if !on && !t.IsSet() {
		return nil
	}
	tc, err := kit.TLSConfig(t)
	for _, e := range pipeline.SplitErrors(err) {
		s.Fail(e)
	}
	return tc
}

// SASL mechanism names, as the sasl setting spells them.
const (
	saslPlain     = "plain"
	saslSCRAM256  = "scram-sha-256"
	saslSCRAM512  = "scram-sha-512"
	saslNeedsUser = "needs a username (set username, or write the endpoint as kafka://user:password@host:port)"
)

// readSASL reads sasl, username and password (user and pass come from
// the endpoint URL; the settings override them) and builds the SASL
// mechanism, or returns nil when there are no credentials. Credentials
// without sasl mean SASL PLAIN.
func readSASL(s *kit.Settings, user, pass string) sasl.Mechanism {
	mech := kit.Choose(s, "sasl", "",
		kit.Choice[string]{Name: saslPlain, Value: saslPlain},
		kit.Choice[string]{Name: saslSCRAM256, Value: saslSCRAM256},
		kit.Choice[string]{Name: saslSCRAM512, Value: saslSCRAM512})
	if u := s.String("username", ""); s.Has("username") {
		user = u
	}
	if pw := s.Secret("password"); s.Has("password") {
		pass = pw.Value()
	}
	switch {
	case mech == "" && user == "":
		if pass != "" {
			s.Errorf("password", "given without username")
		}
		return nil
	case mech == "":
		mech = saslPlain
	case user == "":
		s.Errorf("sasl", saslNeedsUser)
		return nil
	}
	if mech == saslPlain {
		return saslCreds{user: user, m: plain.Mechanism{Username: user, Password: pass}}
	}
	algo := scram.SHA256
	if mech == saslSCRAM512 {
		algo = scram.SHA512
	}
	// The library's error repeats the password: check the username alone
	// first, then report a refused password without its value.
	if _, err := scram.Mechanism(algo, user, ""); err != nil {
		s.Errorf("username", "not usable with %s (SASLprep refuses it)", mech)
		return nil
	}
	m, err := scram.Mechanism(algo, user, pass)
	if err != nil {
		s.Fail(&kit.Error{Key: "password", Err: fmt.Errorf("not usable with %s (SASLprep refuses it)", mech)})
		return nil
	}
	return saslCreds{user: user, m: m}
}

// saslCreds is a SASL mechanism built from settings. It prints as its
// name and user, never its password, so that a Config can be logged.
type saslCreds struct {
	user string
	m    sasl.Mechanism
}

// Name implements sasl.Mechanism.
func (c saslCreds) Name() string { return c.m.Name() }

// Start implements sasl.Mechanism.
func (c saslCreds) Start(ctx context.Context) (sasl.StateMachine, []byte, error) {
	return c.m.Start(ctx)
}

// String shows the mechanism and the user, with the password redacted.
func (c saslCreds) String() string {
	return c.m.Name() + " (username " + strconv.Quote(c.user) + ", password " + kit.Redacted + ")"
}

// Format prints String for every verb (%+v and %#v included).
func (c saslCreds) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// defaultReaderOptions are the fetch defaults of a connector.
func defaultReaderOptions() ReaderOptions {
	return ReaderOptions{StartOffset: StartFirst, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 500 * time.Millisecond}
}

// defaultWriterOptions are the producer defaults of a connector.
func defaultWriterOptions() WriterOptions {
	return WriterOptions{Acks: AcksAll, Compression: "none", BatchSize: 1000, Linger: 5 * time.Millisecond}
}

// readReader reads the fetch settings of a connector or an inbound link.
// Zero (absent) values inherit.
func readReader(s *kit.Settings) ReaderOptions {
	return ReaderOptions{
		StartOffset: kit.Choose(s, "start_offset", StartDefault,
			kit.Choice[StartOffset]{Name: "first", Aliases: []string{"earliest", "oldest"}, Value: StartFirst},
			kit.Choice[StartOffset]{Name: "last", Aliases: []string{"latest", "newest"}, Value: StartLast}),
		MinBytes: int(s.SizeIn("min_bytes", 0, 0, math.MaxInt32)),
		MaxBytes: int(s.SizeIn("max_bytes", 0, 0, math.MaxInt32)),
		MaxWait:  s.Duration("max_wait", 0),
	}
}

// checkFetchSizes reports min_bytes above max_bytes once o inherits from
// base (kafka-go refuses such a reader).
func checkFetchSizes(s *kit.Settings, o, base ReaderOptions) {
	m := o.merge(base)
	if m.MinBytes <= m.MaxBytes {
		return
	}
	if o.MinBytes != 0 {
		s.Errorf("min_bytes", "is above max_bytes (%s)", kit.FormatSize(int64(m.MaxBytes)))
		return
	}
	s.Errorf("max_bytes", "is below min_bytes (%s)", kit.FormatSize(int64(m.MinBytes)))
}

// readWriter reads the producer settings of a connector or an outbound
// link. Zero (absent) values inherit.
func readWriter(s *kit.Settings) WriterOptions {
	return WriterOptions{
		Acks: kit.Choose(s, "acks", AcksDefault,
			kit.Choice[Acks]{Name: "all", Aliases: []string{"-1"}, Value: AcksAll},
			kit.Choice[Acks]{Name: "one", Aliases: []string{"1", "leader"}, Value: AcksOne},
			kit.Choice[Acks]{Name: "none", Aliases: []string{"0"}, Value: AcksNone}),
		Compression: s.Enum("compression", "", "none", "gzip", "snappy", "lz4", "zstd"),
		BatchSize:   s.Int("batch_size", 0, 0, math.MaxInt),
		Linger:      s.Duration("linger", 0),
	}
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
