package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	kafkago "github.com/segmentio/kafka-go"
)

// errClosed is returned by publishes after Close.
var errClosed = errors.New("kafka: connector closed")

// handOffMax caps how many records a batcher collects before it hands
// them to its writer without waiting for Flush.
const handOffMax = 256

// writerBatchBytes is kafka-go's default Writer.BatchBytes, which the
// connector keeps: WriteMessages refuses a larger record.
const writerBatchBytes = 1 << 20

// maxKnownTopics bounds a batcher's set of known topics; when it is full
// it starts over (topics are then verified once more).
const maxKnownTopics = 4096

// batcher collects the records published to one kafka-go Writer and hands
// them to WriteMessages together: the fixed cost of a WriteMessages call
// (partition assignment map, writer locks) is then paid once per batch
// instead of once per record.
//
// Records are appended under mu. A hand-off takes the whole pending batch
// under mu and calls WriteMessages while holding hand, so hand-offs of one
// writer never overlap and records reach the writer in the order they
// were appended (per-key order is kept). Two backing arrays alternate
// between pending and the batch being handed off: kafka-go copies the
// Message values it keeps, so an array is reusable once WriteMessages
// returned.
//
// WriteMessages rejects a whole call for one record it cannot take (a
// topic the cluster does not know, a record larger than the writer's
// BatchBytes). So that such a rejection still reaches the publisher
// synchronously, as it did before batching (the runner then dead-letters
// the record with the pipeline's destination), a record to a topic this
// batcher has not handed off successfully yet, or one that may be too
// large, is handed off alone, synchronously, after what is pending.
type batcher struct {
	c        *conn
	w        *kafkago.Writer
	max      int   // hand off without waiting for Flush at this many pending
	maxBytes int64 // the writer's BatchBytes (writerBatchBytes)

	hand  sync.Mutex         // held while records are handed off
	spare []kafkago.Message  // the other backing array (under hand)
	one   [1]kafkago.Message // a record handed off alone (under hand)

	mu        sync.Mutex
	pending   []kafkago.Message
	known     map[string]struct{} // topics handed off successfully
	lastTopic string              // the last topic found in known
	closed    bool                // set by Close: nothing more is appended
}

// addResult is what batcher.add did with a record.
type addResult uint8

const (
	added     addResult = iota // appended
	addFull                    // appended; the batch reached its size
	addAlone                   // not appended: hand it off alone (handAlone)
	addClosed                  // not appended: the connector closed
)

// add appends m to the pending batch, unless the batcher is closed or m
// is to be handed off alone (see batcher).
func (b *batcher) add(m kafkago.Message) addResult {
	alone := !b.c.batchAll && recordSize(&m) > b.maxBytes
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return addClosed
	case alone || !b.c.batchAll && !b.isKnown(m.Topic):
		return addAlone
	}
	b.pending = append(b.pending, m)
	if len(b.pending) >= b.max {
		return addFull
	}
	return added
}

// isKnown reports whether topic was handed off successfully; with mu held.
func (b *batcher) isKnown(topic string) bool {
	if topic == b.lastTopic && topic != "" {
		return true
	}
	if _, ok := b.known[topic]; !ok {
		return false
	}
	b.lastTopic = topic
	return true
}

// recordSize bounds from above the size kafka-go's WriteMessages checks
// against BatchBytes (its Message.totalSize: fixed fields, key, value,
// and varint-prefixed headers).
func recordSize(m *kafkago.Message) int64 {
	n := 32 + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// handAlone hands m off by itself, after what is pending (keeping order),
// retrying like any hand-off (conn.write), and returns WriteMessages'
// error. On success m's topic is known from then on.
func (b *batcher) handAlone(ctx context.Context, m kafkago.Message) error {
	b.hand.Lock()
	defer b.hand.Unlock()
	b.flushLocked(ctx)
	b.one[0] = m
	err := b.c.write(ctx, b.w, b.one[:])
	b.one[0] = kafkago.Message{}
	if err == nil && m.Topic != "" {
		b.mu.Lock()
		if b.known == nil || len(b.known) >= maxKnownTopics {
			b.known = map[string]struct{}{}
			b.lastTopic = ""
		}
		b.known[m.Topic] = struct{}{}
		b.mu.Unlock()
	}
	return err
}

// flush hands the pending batch to the writer (see conn.handOff); it
// returns once the writer took it or every record in it was settled.
func (b *batcher) flush(ctx context.Context) {
	b.hand.Lock()
	defer b.hand.Unlock()
	b.flushLocked(ctx)
}

// flushLocked is flush with hand held.
func (b *batcher) flushLocked(ctx context.Context) {
	b.mu.Lock()
	msgs := b.pending
	if len(msgs) == 0 {
		b.mu.Unlock()
		return
	}
	b.pending = b.spare
	b.mu.Unlock()
	b.c.handOff(ctx, b.w, msgs)
	clear(msgs) // drop the payload references until the array is reused
	b.spare = msgs[:0]
}

// close marks the batcher closed and hands off what is pending.
func (b *batcher) close(ctx context.Context) {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.flush(ctx)
}

// writerCache remembers the batcher of the last link options seen, so the
// common case (every record of a link with the same options) skips the
// options merge and the map lookup under wmu.
type writerCache struct {
	opts Out
	none bool // opts was nil: the connector's own writer options
	b    *batcher
}

// writer returns the batcher (and asynchronous writer) for a set of
// options, creating it on first use. Each writer has its own transport
// (kafka-go's default transport caches metadata process-wide).
func (c *conn) writer(o WriterOptions) (*batcher, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.closed:
		return nil, errClosed
	default:
	}
	if b := c.writers[o]; b != nil {
		return b, nil
	}
	comp, err := parseCompression(o.Compression)
	if err != nil {
		return nil, err
	}
	w := &kafkago.Writer{
		Addr:            kafkago.TCP(c.cfg.Brokers...),
		Balancer:        kafkago.Murmur2Balancer{Consistent: true},
		MaxAttempts:     c.cfg.MaxAttempts,
		WriteBackoffMin: 100 * time.Millisecond,
		WriteBackoffMax: 2 * time.Second,
		BatchSize:       o.BatchSize,
		BatchTimeout:    o.Linger,
		WriteTimeout:    c.cfg.PublishTimeout,
		RequiredAcks:    o.Acks.required(),
		Async:           true,
		Completion:      c.completion,
		Compression:     comp,
		Transport:       c.transport(),
	}
	b := &batcher{c: c, w: w, max: min(max(o.BatchSize, 1), handOffMax), maxBytes: writerBatchBytes}
	c.writers[o] = b
	all := append(append([]*batcher(nil), c.batcherList()...), b)
	c.batchers.Store(&all)
	return b, nil
}

// batcherList returns every batcher (a snapshot, not to be modified).
func (c *conn) batcherList() []*batcher {
	if p := c.batchers.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *conn) writerFor(opts any) (*batcher, error) {
	out, isOut := opts.(Out)
	if lc := c.lastWriter.Load(); lc != nil && (isOut && !lc.none && lc.opts == out || opts == nil && lc.none) {
		return lc.b, nil
	}
	o := c.cfg.Writer
	if isOut {
		o = out.WriterOptions.merge(c.cfg.Writer)
	}
	b, err := c.writer(o)
	if err != nil {
		return nil, err
	}
	if isOut || opts == nil {
		c.lastWriter.Store(&writerCache{opts: out, none: opts == nil, b: b})
	}
	return b, nil
}

// published is the WriterData of a record produced by Publish: the
// outcome is sent to the waiting caller instead of an ack, and a
// rejection is returned to it rather than dead-lettered here.
type published chan error

// completion settles the records of a produced batch and frees their
// in-flight slots. It runs on the writer's goroutines.
func (c *conn) completion(msgs []kafkago.Message, err error) {
	if err != nil {
		err = fmt.Errorf("kafka produce: %w", err)
		if isNetErr(err) {
			c.setOutReady(err)
			c.probe()
		}
	} else if p := c.outErr.Load(); p != nil && *p != nil {
		c.setOutReady(nil)
	}
	permanent := err != nil && rejection(err)
	for i := range msgs {
		c.settle(&msgs[i], err, permanent)
	}
}

// settle reports the outcome of one record to whoever waits for it and
// frees its in-flight slot. A permanent rejection (policy violation,
// record too large, unknown topic, ...) of an asynchronously published
// record finishes its ack share with pipeline.Permanent(err): the runner
// then dead-letters the record with its provenance (or rejects it when the
// graph has no destination). Any other failure finishes the share with the
// plain error, so the source redelivers the record.
func (c *conn) settle(m *kafkago.Message, err error, permanent bool) {
	switch d := m.WriterData.(type) {
	case published:
		d <- err
	case *pipeline.Ack:
		if permanent {
			err = pipeline.Permanent(err)
		}
		d.Finish(err)
	}
	<-c.sem
}

// handOff gives msgs to the writer. Retriable failures (no usable broker,
// metadata unavailable) are retried with backoff up to
// Config.PublishTimeout, and then, like a cancelled ctx or a closed
// connector, nack every record. A permanent failure of a batch names no
// record, so the records are handed off one by one (within one
// PublishTimeout) and only those that fail alone are rejected. An
// asynchronous WriteMessages fails before it queues anything, so no
// record is queued twice.
func (c *conn) handOff(ctx context.Context, w *kafkago.Writer, msgs []kafkago.Message) {
	err := c.write(ctx, w, msgs)
	if err == nil {
		return
	}
	permanent := rejection(err) && ctx.Err() == nil
	if permanent && len(msgs) > 1 {
		c.log.Debug("kafka produce: batch rejected; handing its records off one by one", "records", len(msgs), "error", err)
		ictx, cancel := context.WithTimeout(ctx, c.cfg.PublishTimeout)
		defer cancel()
		for i := range msgs {
			c.handOff(ictx, w, msgs[i:i+1])
		}
		return
	}
	for i := range msgs {
		c.settle(&msgs[i], fmt.Errorf("kafka produce to %s: %w", msgs[i].Topic, err), permanent)
	}
}

// write calls WriteMessages, retrying retriable errors with backoff up to
// Config.PublishTimeout while ctx lasts and the connector is open; it
// returns the last error.
func (c *conn) write(ctx context.Context, w *kafkago.Writer, msgs []kafkago.Message) error {
	var deadline <-chan time.Time
	var bo pipeline.Backoff
	for {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil || !retriable(err) || ctx.Err() != nil {
			return err
		}
		c.log.Debug("kafka produce: retrying", "records", len(msgs), "error", err)
		if deadline == nil {
			t := time.NewTimer(c.cfg.PublishTimeout)
			defer t.Stop()
			deadline = t.C
			c.setOutReady(fmt.Errorf("kafka produce: %w", err))
			c.probe()
		}
		wait := time.NewTimer(bo.Next())
		select {
		case <-wait.C:
			continue
		case <-deadline:
		case <-ctx.Done():
		case <-c.closed:
		}
		wait.Stop()
		return err
	}
}

// acquire takes an in-flight slot (Config.MaxInFlight). Records held in
// a pending batch hold slots too and are confirmed only once handed off,
// so before waiting for a slot it hands every pending batch off.
func (c *conn) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	default:
	}
	c.flushAll(ctx)
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return errClosed
	}
}

func (c *conn) flushAll(ctx context.Context) {
	for _, b := range c.batcherList() {
		b.flush(ctx)
	}
}

// publish appends a record for env to the batch of the writer for opts,
// with data as its WriterData, and hands the batch off when it is full,
// when now is set, or while no caller has called Flush yet.
func (c *conn) publish(ctx context.Context, dest string, opts any, env *pipeline.Envelope, data any, now bool) error {
	b, err := c.writerFor(opts)
	if err != nil {
		return err
	}
	if err := c.acquire(ctx); err != nil {
		return err
	}
	// Payload and Key are not copied: their bytes are never written once
	// in an envelope (see pipeline.AsyncPublisher), and kafka-go only
	// reads them.
	msg := kafkago.Message{Topic: dest, Value: env.Payload, Key: env.Key, Time: env.Time, WriterData: data}
	if len(env.Headers) > 0 {
		msg.Headers = kafkaHeaders(env.Headers)
	}
	switch b.add(msg) {
	case addClosed:
		<-c.sem
		return errClosed
	case addAlone:
		if err := b.handAlone(ctx, msg); err != nil {
			<-c.sem
			return fmt.Errorf("kafka produce to %s: %w", dest, err)
		}
	case addFull:
		b.flush(ctx)
	default:
		if now || !c.flushed.Load() {
			b.flush(ctx)
		}
	}
	return nil
}

// kafkaHeaders converts envelope headers to Kafka record headers, in
// order, with two allocations: the header slice and one array holding
// every value.
func kafkaHeaders(hs pipeline.Headers) []kafkago.Header {
	n := 0
	for _, h := range hs {
		n += len(h.Value)
	}
	vals := make([]byte, 0, n)
	return kit.AppendPairs(make([]kafkago.Header, 0, len(hs)), hs, nil, func(key, value string) kafkago.Header {
		vals = append(vals, value...)
		return kafkago.Header{Key: key, Value: vals[len(vals)-len(value) : len(vals) : len(vals)]}
	})
}

// PublishAsync implements pipeline.AsyncPublisher: it appends the record
// to its writer's pending batch and returns; env.Ack is finished from the
// producer's completion callback once the broker confirmed the record (or
// the producer gave up). The batch goes to the writer when it holds
// min(batch_size, 256) records, when Flush is called, or, until the first
// Flush, at once. The first record to a topic, and a record that may
// exceed the writer's size limit, are handed off alone and at once, so
// that an unknown topic or an oversized record is reported by the returned
// error (the share not consumed), as without batching. It blocks while
// Config.MaxInFlight records (pending ones included) are unconfirmed, and
// a hand-off it makes retries with backoff (up to Config.PublishTimeout)
// while the cluster's metadata cannot be fetched.
func (c *conn) PublishAsync(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	return c.publish(ctx, dest, opts, env, env.Ack, false)
}

// Flush implements pipeline.Flusher: it hands every pending batch to its
// writer (the writer's linger still applies). From the first call on,
// PublishAsync holds records back until the next Flush or a full batch.
// The records' outcomes reach their acks; Flush returns ctx's error if ctx
// ended.
func (c *conn) Flush(ctx context.Context) error {
	if !c.flushed.Load() {
		c.flushed.Store(true)
	}
	c.flushAll(ctx)
	return ctx.Err()
}

// Publish implements pipeline.Connector: it produces env (handing off its
// writer's pending batch with it) and waits for the broker's confirmation
// (or ctx). A rejection is returned, not dead-lettered.
func (c *conn) Publish(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	done := make(published, 1)
	if err := c.publish(ctx, dest, opts, env, done, true); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retriable reports whether a produce error is worth retrying: the cluster
// is unreachable or answered with a temporary error.
func retriable(err error) bool {
	if isNetErr(err) {
		return true
	}
	var ke kafkago.Error
	if errors.As(err, &ke) {
		return ke.Temporary() && ke != kafkago.UnknownTopicOrPartition
	}
	return false
}

// rejection reports whether a produce error is a permanent rejection of
// the records (to be dead-lettered) rather than a failure to deliver them
// now (to be redelivered): not retriable, and not a cancellation or a
// closed writer or connector.
func rejection(err error) bool {
	return !retriable(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) &&
		!errors.Is(err, io.ErrClosedPipe) && !errors.Is(err, errClosed)
}

func isNetErr(err error) bool {
	var ke kafkago.Error
	if errors.As(err, &ke) {
		return false // a broker answered (kafka.Error also satisfies net.Error)
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}
