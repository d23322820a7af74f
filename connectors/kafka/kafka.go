// Package kafka is the Kafka connector, built on github.com/segmentio/kafka-go.
//
// Endpoint: kafka://host:port[,host:port...]. A link address is a topic
// name: inbound links (record ... from "kafka://orders") consume it as a
// member of the connector's consumer group, outbound links (to
// "kafka://alerts" or "kafka://alerts.{site}") produce to it.
//
// # Delivery
//
// Inbound is at-least-once. Every record is dispatched with an ack; its
// offset becomes committable when every sink it reached acknowledged it.
// Commits advance per partition as a watermark: the lowest offset not yet
// acknowledged (records may finish out of order, for example when one is
// fanned out to several sinks), batched every CommitInterval and on
// rebalance and Close. A nacked record (a sink that could neither deliver
// nor dead-letter it) stops its partition: the connector waits for the
// partition's other in-flight records to settle, rewinds the partition's
// fetcher to the nacked offset after a backoff, and redelivers from there
// (records after it that had already finished are delivered again: that is
// the at-least-once duplicate window). Records of one partition are
// dispatched by one goroutine in offset order, so per-key order is kept.
//
// Consumer groups are managed explicitly with kafka-go's ConsumerGroup and
// Generation API: each generation starts one fetcher per assigned
// partition; when the generation ends (another member joined or left) the
// fetchers stop, in-flight records of the revoked partitions get
// Config.RevokeTimeout to finish, the watermark is committed, and whatever
// is still in flight is abandoned (its late acks are ignored) and
// redelivered to the partition's next owner.
//
// Outbound uses one asynchronous kafka-go Writer per distinct set of writer
// options, batching with a linger; records are pipelined (the connector
// implements pipeline.AsyncPublisher) and each record's ack is finished
// from the writer's completion callback, so a failed produce reaches the
// source as a nack (redelivery) instead of being lost. In front of each
// writer the connector collects the records the runner hands it and gives
// them to the writer in one WriteMessages call when the runner's outbound
// loop has nothing more ready (pipeline.Flusher) or the batch is full. A
// record the broker rejects for good is reported alone, as
// pipeline.Permanent on its ack share (the runner dead-letters it with its
// provenance); the rest of its batch is unaffected. A transient failure is
// reported as the plain error: the source redelivers.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	kafkago "github.com/segmentio/kafka-go"
)

// Scheme is the connector scheme.
const Scheme = "kafka"

// Builder builds Kafka connectors.
type Builder struct {
	cfg Config
}

var (
	_ pipeline.Builder             = (*Builder)(nil)
	_ pipeline.LinkOptionParser    = (*Builder)(nil)
	_ pipeline.LinkOptionValidator = (*Builder)(nil)
)

// New returns a builder for cfg. It reports every configuration mistake at
// once.
func New(cfg Config) (*Builder, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return &Builder{cfg: cfg}, nil
}

// Factory builds a Kafka connector from a DSL declaration, e.g.
//
//	connector kafka "kafka://127.0.0.1:9092" group "alerts" acks all
//
// It is registered under the scheme "kafka" in connectors/registry. Its
// errors are ParseConfig' (not wrapped, so that the DSL reports each
// problem at its setting).
func Factory(endpoint string, params pipeline.Params) (pipeline.Builder, error) {
	cfg, err := ParseConfig(endpoint, params)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// Scheme implements pipeline.Builder.
func (*Builder) Scheme() string { return Scheme }

// Caps implements pipeline.CapsDeclarer: keyed, with headers, partitions
// and offsets inbound.
func (*Builder) Caps() pipeline.Caps {
	return pipeline.Caps{Inbound: true, Outbound: true, Key: true, Headers: true, Partitions: true}
}

// Config returns the builder's configuration with defaults applied.
func (b *Builder) Config() Config { return b.cfg }

// errNoGroup is the error of an inbound link on a connector without a
// consumer group.
var errNoGroup = errors.New("inbound kafka links need a consumer group: set group on the connector")

// ParseLinkOptions implements pipeline.LinkOptionParser: inbound links take
// start_offset, min_bytes, max_bytes, max_wait (In); outbound links take
// acks, compression, batch_size, linger (Out). Settings are read with the
// shared reader (connectors/kit), and the options read are then checked by
// ValidateLinkOptions, the checks typed Go options get, so both front ends
// reject the same mistakes with the same words. Every problem is reported
// at once, those with a setting as *kit.Error values naming it.
func (b *Builder) ParseLinkOptions(dir pipeline.Direction, address string, p pipeline.Params) (any, error) {
	s := kit.ReadLink(dir, p)
	var opts any
	if dir == pipeline.Inbound {
		opts = In{readReader(s)}
	} else {
		opts = Out{readWriter(s)}
	}
	errs := pipeline.SplitErrors(b.ValidateLinkOptions(dir, address, opts))
	if err := s.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return opts, nil
}

// Build implements pipeline.Builder. It does not touch the network:
// connections are made (and retried) in the background.
func (b *Builder) Build(ctx context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &conn{cfg: b.cfg, log: log, writers: map[WriterOptions]*batcher{}}
	c.sem = make(chan struct{}, b.cfg.MaxInFlight)
	c.closed = make(chan struct{})
	if b.cfg.TLS != nil && b.cfg.TLS.InsecureSkipVerify {
		log.Warn("kafka: TLS certificate verification disabled (insecure_skip_verify true)", "brokers", b.cfg.Brokers)
	}
	if len(env.Inbound) > 0 {
		if b.cfg.Group == "" {
			return nil, errNoGroup
		}
		c.src = newSource(c)
	} else {
		c.setOutReady(errors.New("not connected yet"))
		c.probe()
		c.bg.Add(1)
		go c.watch(healthInterval)
	}
	return c, nil
}

// healthInterval is how often a produce-only connector checks that a
// broker answers, so readiness follows the cluster even when nothing is
// being produced.
const healthInterval = 2 * time.Second

// watch pings the cluster every interval while no probe is running; a
// failed ping marks the producer side not ready and starts the probe,
// which retries with backoff and marks it ready again.
func (c *conn) watch(interval time.Duration) {
	defer c.bg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
		}
		if c.probing.Load() {
			continue
		}
		pctx, pcancel := context.WithCancel(ctx)
		stop := make(chan struct{})
		go func() {
			select {
			case <-c.closed:
				pcancel()
			case <-stop:
			}
		}()
		err := c.ping(pctx)
		close(stop)
		pcancel()
		if err != nil && !isClosed(c.closed) {
			c.setOutReady(fmt.Errorf("kafka: no usable broker: %w", err))
			c.probe()
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// conn is a built Kafka connector.
type conn struct {
	cfg Config
	log *slog.Logger

	wmu     sync.Mutex
	writers map[WriterOptions]*batcher
	sem     chan struct{}
	// batchers lists the writers' batchers for Flush (copy on write,
	// under wmu); lastWriter caches the last writerFor lookup.
	batchers   atomic.Pointer[[]*batcher]
	lastWriter atomic.Pointer[writerCache]
	// flushed is set by the first Flush: from then on PublishAsync may
	// hold records back until the next one.
	flushed atomic.Bool
	// batchAll is a test hook: every record goes into the pending batch
	// (none is handed off alone), so that the rejection of a record inside
	// a batch can be exercised.
	batchAll bool

	outErr  atomic.Pointer[error]
	probing atomic.Bool
	closed  chan struct{}
	bg      sync.WaitGroup

	src *source
}

var (
	_ pipeline.Connector      = (*conn)(nil)
	_ pipeline.AsyncPublisher = (*conn)(nil)
	_ pipeline.Flusher        = (*conn)(nil)
	_ pipeline.Source         = (*conn)(nil)
	_ pipeline.Readiness      = (*conn)(nil)
)

func (c *conn) dialer() *kafkago.Dialer {
	return &kafkago.Dialer{ClientID: c.cfg.ClientID, Timeout: 10 * time.Second, DualStack: true,
		TLS: c.cfg.TLS, SASLMechanism: c.cfg.SASL, DialFunc: c.cfg.Dial}
}

func (c *conn) transport() *kafkago.Transport {
	return &kafkago.Transport{ClientID: c.cfg.ClientID, TLS: c.cfg.TLS, SASL: c.cfg.SASL, Dial: c.cfg.Dial,
		DialTimeout: 10 * time.Second, MetadataTTL: 10 * time.Second}
}

// Ready implements pipeline.Readiness: a consumer is ready while it is a
// member of its group; a producer-only connector once a broker answered
// and as long as produce requests succeed.
func (c *conn) Ready() error {
	if c.src != nil {
		if err := c.src.ready(); err != nil {
			return err
		}
		return nil
	}
	if p := c.outErr.Load(); p != nil && *p != nil {
		return *p
	}
	return nil
}

func (c *conn) setOutReady(err error) { c.outErr.Store(&err) }

// probe checks, in the background with backoff, that a broker answers a
// metadata request; it marks the producer side ready when one does.
func (c *conn) probe() {
	if !c.probing.CompareAndSwap(false, true) {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer c.probing.Store(false)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-c.closed:
				cancel()
			case <-ctx.Done():
			}
		}()
		bo := pipeline.Backoff{Min: 200 * time.Millisecond, Max: 10 * time.Second}
		for {
			err := c.ping(ctx)
			if err == nil {
				c.setOutReady(nil)
				return
			}
			c.setOutReady(fmt.Errorf("kafka: no usable broker: %w", err))
			c.log.Debug("kafka brokers unreachable; retrying", "error", err)
			if !bo.Sleep(ctx) {
				return
			}
		}
	}()
}

func (c *conn) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var errs []error
	for _, b := range c.cfg.Brokers {
		kc, err := c.dialer().DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_ = kc.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = kc.Brokers()
		kc.Close()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Close hands off the records pending in the producers' batches and
// flushes the producers (so their completions settle the acks of the
// records they carry), then commits the consumer's final watermark and
// leaves the group, all within ctx's deadline.
func (c *conn) Close(ctx context.Context) error {
	select {
	case <-c.closed:
		return nil
	default:
		close(c.closed)
	}
	var errs []error
	c.wmu.Lock()
	writers := c.writers
	c.writers = map[WriterOptions]*batcher{}
	c.batchers.Store(nil)
	c.lastWriter.Store(nil)
	c.wmu.Unlock()
	for _, b := range writers {
		w := b.w
		// Publishes have stopped (c.closed): what is pending goes to the
		// writer once, without retries, and the writer flushes it.
		if err := closeWithin(ctx, func() error { b.close(ctx); return w.Close() }); err != nil {
			errs = append(errs, fmt.Errorf("flush producer: %w", err))
		}
		// kafka-go's Writer.Close releases only a transport it created
		// itself: close the idle connections (and metadata pollers) of
		// ours, or their goroutines and sockets outlive the connector.
		if tr, ok := w.Transport.(*kafkago.Transport); ok {
			tr.CloseIdleConnections()
		}
	}
	if c.src != nil {
		if err := c.src.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	done := make(chan struct{})
	go func() { c.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return errors.Join(errs...)
}

// closeWithin runs fn and waits for it until ctx ends.
func closeWithin(ctx context.Context, fn func() error) error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
