package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"
)

// Link is a parsed link address: the name of the connector that serves it
// and the connector-specific address, e.g. "mqtt://sensors/+/temp" is
// {Connector: "mqtt", Address: "sensors/+/temp"}. A link address is not an
// endpoint URL: the endpoint (broker host, credentials) belongs to the
// connector, the link names a topic, path or stream on it.
type Link struct {
	Connector string
	Address   string
}

// String renders the link as "connector://address".
func (l Link) String() string { return l.Connector + "://" + l.Address }

// ParseLink splits "name://address". The address may be empty for
// connectors that need none (e.g. "stdio://").
func ParseLink(s string) (Link, error) {
	name, addr, ok := strings.Cut(s, "://")
	if !ok || name == "" {
		return Link{}, fmt.Errorf("link %q: want connector://address", s)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '+') {
			return Link{}, fmt.Errorf("link %q: invalid connector name %q", s, name)
		}
	}
	return Link{Connector: name, Address: addr}, nil
}

// Endpoint is a connector's endpoint URL ("mqtt://user@127.0.0.1:1883",
// "kafka://h1:9092,h2:9092"). It is kept as a parsed URL; secrets in it must
// never be logged: use Redacted.
type Endpoint struct{ *url.URL }

// ParseEndpoint parses an endpoint URL.
func ParseEndpoint(s string) (Endpoint, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint: %w", err)
	}
	if u.Scheme == "" {
		return Endpoint{}, fmt.Errorf("endpoint %q: missing scheme", s)
	}
	return Endpoint{u}, nil
}

// Redacted returns the URL with any password replaced.
func (e Endpoint) Redacted() string {
	if e.URL == nil {
		return ""
	}
	return e.URL.Redacted()
}

// Params are untyped key/value settings as written in a .flow file
// (`client_id "edge-1"`, `qos 1`). Connectors parse them into their own
// typed options once, at build time.
type Params map[string]string

// SettingError is implemented by a configuration error about one named
// setting (a connector or link parameter, see connectors/kit). A front end
// that knows where each setting was written (the DSL) reports such an
// error at the setting's position instead of the declaration's.
type SettingError interface {
	error
	Setting() string
}

// SplitErrors flattens err into its leaves: an error with Unwrap() []error
// (errors.Join, kit.Errors, *ValidationError) is replaced by its parts,
// recursively; any other error is one leaf. A nil err has none.
func SplitErrors(err error) []error {
	if err == nil {
		return nil
	}
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range m.Unwrap() {
			out = append(out, SplitErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// SettingOf returns the setting err is about (see SettingError), looking
// through single-error wrapping, or "". An error that wraps several
// errors is about no single setting.
func SettingOf(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if se, ok := e.(SettingError); ok {
			return se.Setting()
		}
		if _, multi := e.(interface{ Unwrap() []error }); multi {
			return ""
		}
	}
	return ""
}

// Direction tells whether a link is inbound (source) or outbound (sink).
type Direction uint8

// Link directions.
const (
	Inbound Direction = iota + 1
	Outbound
)

func (d Direction) String() string {
	if d == Inbound {
		return "inbound"
	}
	return "outbound"
}

// MarshalText renders the direction as "inbound" or "outbound" (JSON of
// /stats and the records API).
func (d Direction) MarshalText() ([]byte, error) {
	switch d {
	case Inbound, Outbound:
		return []byte(d.String()), nil
	}
	return nil, fmt.Errorf("pipeline: unknown direction %d", d)
}

// UnmarshalText reads "inbound" or "outbound".
func (d *Direction) UnmarshalText(b []byte) error {
	switch string(b) {
	case "inbound":
		*d = Inbound
	case "outbound":
		*d = Outbound
	default:
		return fmt.Errorf("pipeline: unknown direction %q (want inbound or outbound)", b)
	}
	return nil
}

// Builder creates a connector. One Builder value is configured per
// connector instance (it carries the endpoint and typed options) and named
// in a Graph; links whose connector name matches are served by it.
type Builder interface {
	// Scheme is the connector type ("mqtt", "kafka", "file").
	Scheme() string
	// Build creates the connector. It should not block on the network:
	// connection management belongs in the background so that a broker that
	// is down at start is retried rather than fatal.
	Build(ctx context.Context, env BuildEnv) (Connector, error)
}

// LinkChecker is optionally implemented by a Builder to check, at
// validation, that an inbound link can work where the graph runs (a file
// source's file exists). Unlike ParseLinkOptions it looks outside the
// configuration, so harnesses that stand in for the connector (pipeline
// tests) do not call it. opts is what ParseLinkOptions returned.
type LinkChecker interface {
	CheckLink(dir Direction, addr string, opts any) error
}

// LinkOptionParser is optionally implemented by a Builder to validate and
// type the options of its links once, before anything starts. The returned
// value is what Publish and Serve receive as opts.
type LinkOptionParser interface {
	ParseLinkOptions(dir Direction, address string, params Params) (any, error)
}

// LinkOptionValidator is optionally implemented by a Builder whose links
// take typed options. Validation calls ValidateLinkOptions for each link
// given typed options in Go (Options(v)), which skips ParseLinkOptions;
// a connector applies there the checks ParseLinkOptions applies after
// reading Params (and ParseLinkOptions should end with the same call), so
// that both front ends reject the same mistakes, including options of the
// wrong type for the link's direction.
type LinkOptionValidator interface {
	ValidateLinkOptions(dir Direction, address string, opts any) error
}

// BuildEnv is what a Builder receives.
type BuildEnv struct {
	// Name is the connector's name in the graph (the link scheme).
	Name   string
	Logger *slog.Logger
	Tracer Tracer // may be nil
	// Inbound lists the inbound links this connector will serve (the same
	// subscriptions Serve receives), so a connector can subscribe on
	// connect and report readiness accordingly.
	Inbound []Subscription
}

// Connector is a built connector: it owns its connection(s), reconnects in
// the background with backoff, and publishes.
type Connector interface {
	// Publish sends env.Payload (with env.Key and env.Headers where the
	// protocol has them) to dest and returns when the destination confirmed
	// it (or, for fire-and-forget protocols, when it was written). opts is
	// the value returned by ParseLinkOptions, or nil. Publish must return by
	// ctx's deadline. Publish may be called concurrently.
	Publish(ctx context.Context, dest string, opts any, env *Envelope) error
	// Close releases resources after the runner has drained: flush pending
	// publishes and commit acknowledged offsets within ctx's deadline.
	Close(ctx context.Context) error
}

// AsyncPublisher is optionally implemented by connectors that confirm
// publishes asynchronously (pipelining many in flight). PublishAsync hands
// env off and returns; the connector must copy what it needs from env
// before returning (the envelope is reused) and later call env.Ack.Finish
// exactly once with the outcome. The runner takes that ack share before the
// call. A non-nil return means the hand-off failed and the share was not
// consumed.
//
// Only the Envelope struct is reused, not the bytes it points to: the
// slices in Payload and Key are never written once they are in an
// envelope (sources dispatch freshly allocated bytes whose ownership
// passes on, encoders and KeyFuncs return slices the caller owns, and
// records share them with every reader and keep the latest for
// inspection), so a connector may keep references to them until the
// publish is confirmed instead of copying them.
//
// A connector that also implements Flusher may hold handed-off records
// back to send them in batches; see Flusher.
type AsyncPublisher interface {
	PublishAsync(ctx context.Context, dest string, opts any, env *Envelope) error
}

// Flusher is optionally implemented by an AsyncPublisher that batches the
// records handed to PublishAsync before sending them. Flush is called by
// the runner's outbound loop when no more records are immediately ready
// for this connector (after each batch it received from the buffer), and
// before shutdown; it hands anything pending to the wire. It does not wait
// for confirmations: their outcomes still reach each record's ack. A
// non-nil error is informational (the records' outcomes are reported
// through their acks either way). Flush may be called concurrently with
// PublishAsync and with itself.
//
// A Flusher may hold a record back only while its caller is known to call
// Flush: once Flush has been called, a caller must call it again whenever
// it stops handing records off. A connector must still make progress for
// callers that never call Flush (hand each record off at once until the
// first Flush), for Publish (which returns only when confirmed) and on
// Close (which hands off whatever is pending).
type Flusher interface {
	Flush(ctx context.Context) error
}

// Subscription is one inbound link as the connector sees it.
type Subscription struct {
	// Filter is the link address (topic filter, path, file name).
	Filter string
	// Options is the value returned by ParseLinkOptions, or nil.
	Options any
	// Record is the record the link feeds (for logs and gen templates).
	Record string
	// Decoder is the link's decoder. A source that can refuse a message
	// to its sender before accepting it (HTTP answers 400) may decode with
	// it first; the runner still decodes what is dispatched. PayloadOnly
	// or nil means the link does not decode.
	Decoder Decoder
}

// Source is implemented by connectors with inbound links.
type Source interface {
	// Serve subscribes to every subscription (re-subscribing after each
	// reconnect) and hands each inbound message to d until ctx is done, then
	// stops consuming and returns nil. It returns a non-nil error only when
	// it cannot continue at all. Serve sets env.Topic to the concrete topic,
	// env.Ack to an ack whose callback acknowledges the message to the
	// broker (nil for fire-and-forget sources), and calls d.Dispatch.
	Serve(ctx context.Context, subs []Subscription, d Dispatcher) error
}

// FiniteSource is optionally implemented by a Source whose inbound data
// ends by itself (a file, a generator with a count). When every source of a
// graph is finite for its subscriptions and all have returned, the runner
// drains and stops without waiting for cancellation.
type FiniteSource interface {
	Finite(subs []Subscription) bool
}

// Dispatcher is handed to a Source: it routes a message to every record
// whose inbound link matches env.Topic, decoding with each link's decoder.
type Dispatcher interface {
	// Dispatch consumes env's ack share. It blocks while a lossless buffer
	// is full (backpressure) and returns ctx.Err() if ctx ends first. A
	// payload that fails to decode is dead-lettered and counted, not
	// returned as an error.
	Dispatch(ctx context.Context, env *Envelope) error
}

// Rejecter is implemented by the runner's Dispatcher. A source that
// receives a message it cannot turn into a payload (a frame that fails its
// protocol's own checks, a value its declared type does not allow) hands
// it over with Reject instead of Dispatch: the runner dead-letters it
// (stage "receive", the reason, the record and link it was routed to) and
// the pipeline goes on. Like Dispatch, Reject consumes env's ack share (so
// a protocol with acks acknowledges the message once its dead letter is
// stored) and returns a non-nil error only when ctx ended.
type Rejecter interface {
	Reject(ctx context.Context, env *Envelope, reason error) error
}

// BatchDispatcher is implemented by the runner's Dispatcher. A source that
// has several messages at hand (lines read in one go) may hand them over
// together: DispatchBatch(ctx, envs) is Dispatch of each in order, with
// the buffer hand-off done once for the batch. The source gives up the
// envelopes (it must not reuse their payloads) and DispatchBatch may
// modify envs. It returns a non-nil error only when ctx ended.
type BatchDispatcher interface {
	DispatchBatch(ctx context.Context, envs []Envelope) error
}

// Readiness is optionally implemented by connectors that can tell whether
// they are connected. A nil error means ready.
type Readiness interface {
	Ready() error
}

// Backoff computes exponential retry delays with full jitter, for
// reconnection loops.
type Backoff struct {
	Min, Max time.Duration // defaults 100ms and 30s
	Factor   float64       // default 2
	attempt  int
}

// Next returns the delay before the next attempt and advances the counter.
func (b *Backoff) Next() time.Duration {
	lo, hi, f := b.Min, b.Max, b.Factor
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi <= 0 {
		hi = 30 * time.Second
	}
	if f <= 1 {
		f = 2
	}
	d := float64(lo)
	for i := 0; i < b.attempt && d < float64(hi); i++ {
		d *= f
	}
	if d > float64(hi) {
		d = float64(hi)
	}
	b.attempt++
	// Full jitter in [d/2, d): keeps a floor so retries never hammer.
	return time.Duration(d/2 + rand.Float64()*d/2)
}

// Reset starts the sequence again after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Sleep waits for the next delay or ctx; it reports false if ctx ended.
func (b *Backoff) Sleep(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Factory builds a connector Builder from a DSL declaration: the endpoint
// URL and the connector's settings (`connector NAME "URL" key value ...`).
// Each connector package exports one; package connectors/registry maps
// schemes to them.
type Factory func(endpoint string, params Params) (Builder, error)
