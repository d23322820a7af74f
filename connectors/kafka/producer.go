package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	kafkago "github.com/segmentio/kafka-go"
)

// errClosed is returned by publishes after Close.
var errClosed = errors.New("kafka: connector closed")

// writer returns the asynchronous writer for a set of options, creating it
// on first use. Each writer has its own transport (kafka-go's default
// transport caches metadata process-wide).
func (c *conn) writer(o WriterOptions) (*kafkago.Writer, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.closed:
		return nil, errClosed
	default:
	}
	if w := c.writers[o]; w != nil {
		return w, nil
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
	c.writers[o] = w
	return w, nil
}

// completion settles the acks of a produced batch and frees their
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
	for i := range msgs {
		a, _ := msgs[i].WriterData.(*pipeline.Ack)
		if err != nil && !retriable(err) && c.deadLetter != nil {
			// A permanent rejection (policy violation, record too large,
			// ...): dead-letter the record when the graph has a
			// destination, then acknowledge it; otherwise nack for
			// redelivery. The dead letter is published off the writer's
			// goroutine, which must not wait on itself.
			m := msgs[i]
			c.bg.Add(1)
			go func() {
				defer c.bg.Done()
				env := pipeline.Envelope{Topic: m.Topic, Key: m.Key, Payload: m.Value, Time: m.Time}
				for _, h := range m.Headers {
					env.Headers = append(env.Headers, pipeline.Header{Key: h.Key, Value: string(h.Value)})
				}
				ctx, cancel := context.WithTimeout(context.Background(), c.cfg.PublishTimeout)
				defer cancel()
				if dlErr := c.deadLetter(ctx, &env, m.Topic, err); dlErr != nil {
					a.Finish(err)
					return
				}
				a.Done()
			}()
			<-c.sem
			continue
		}
		if a != nil {
			a.Finish(err)
		}
		<-c.sem
	}
}

func (c *conn) writerFor(opts any) (*kafkago.Writer, error) {
	o := c.cfg.Writer
	if out, ok := opts.(Out); ok {
		o = out.WriterOptions.merge(c.cfg.Writer)
	}
	return c.writer(o)
}

// PublishAsync implements pipeline.AsyncPublisher: it copies the record
// into the producer's batch and returns; env.Ack is finished from the
// producer's completion callback once the broker confirmed the batch (or
// the producer gave up). It blocks while Config.MaxInFlight records are
// unconfirmed, and retries with backoff (up to Config.PublishTimeout)
// while the cluster's metadata cannot be fetched.
func (c *conn) PublishAsync(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	w, err := c.writerFor(opts)
	if err != nil {
		return err
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return errClosed
	}
	msg := kafkago.Message{Topic: dest, Value: clone(env.Payload), Key: clone(env.Key), Time: env.Time, WriterData: env.Ack}
	if len(env.Headers) > 0 {
		msg.Headers = make([]kafkago.Header, len(env.Headers))
		for i, h := range env.Headers {
			msg.Headers[i] = kafkago.Header{Key: h.Key, Value: []byte(h.Value)}
		}
	}
	var deadline <-chan time.Time
	var bo pipeline.Backoff
loop:
	for {
		err = w.WriteMessages(ctx, msg)
		if err == nil {
			return nil
		}
		if !retriable(err) || ctx.Err() != nil {
			break
		}
		c.log.Debug("kafka produce: retrying", "topic", dest, "error", err)
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
		case <-deadline:
			wait.Stop()
			break loop
		case <-ctx.Done():
			wait.Stop()
			break loop
		case <-c.closed:
			wait.Stop()
			break loop
		}
	}
	<-c.sem
	return fmt.Errorf("kafka produce to %s: %w", dest, err)
}

// Publish implements pipeline.Connector: it produces env and waits for the
// broker's confirmation (or ctx).
func (c *conn) Publish(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	done := make(chan error, 1)
	e := *env
	e.Ack = pipeline.NewAck(func(err error) { done <- err })
	if err := c.PublishAsync(ctx, dest, opts, &e); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
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

func isNetErr(err error) bool {
	var ke kafkago.Error
	if errors.As(err, &ke) {
		return false // a broker answered (kafka.Error also satisfies net.Error)
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}
