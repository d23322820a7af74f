package mqtt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// ErrDropped is reported for a record that the drop-oldest offline policy
// removed from a full offline queue.
var ErrDropped = errors.New("mqtt: dropped from the full offline queue (policy drop-oldest)")

// RejectedError is a publish the broker or the client refused: the broker
// answered with a failure reason code (not authorized, quota exceeded,
// ...), the client refused the packet as invalid, or the rendered
// destination is not a topic name. Unless Retryable, sending the same
// record again cannot help: the asynchronous publisher then reports it as
// pipeline.Permanent, and the runner dead-letters the record (a
// synchronous Publish error is dead-lettered in any case).
type RejectedError struct {
	Topic  string
	Code   byte   // MQTT 5 reason code (>= 0x80), 0 when Err is set
	Reason string // ": reason string" from the broker, if any
	Err    error
}

func (e *RejectedError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("mqtt: publish to %s: %v", e.Topic, e.Err)
	}
	return fmt.Sprintf("mqtt: broker rejected publish to %s: %s (reason 0x%02x)%s", e.Topic, pubReason(e.Code), e.Code, e.Reason)
}

func (e *RejectedError) Unwrap() error { return e.Err }

// Retryable reports whether the broker's reason may clear when the record
// is sent again later (quota exceeded, packet identifier in use).
func (e *RejectedError) Retryable() bool { return e.Err == nil && pubRetryable(e.Code) }

// ErrClosed is reported for records still queued when the connector closed.
var ErrClosed = errors.New("mqtt: connector closed")

// errSessionLost cancels in-flight publishes whose session state the
// client or broker discarded; they are sent again.
var errSessionLost = errors.New("mqtt: session lost")

// pubReq is one record waiting to be published.
type pubReq struct {
	p        *paho.Publish // &pkt
	pkt      paho.Publish  // in the same allocation
	deadline time.Time
	done     func(error)
	// state: 0 queued, 1 taken by a worker, 2 abandoned by a synchronous
	// caller that gave up; finished guards done.
	state    atomic.Int32
	finished atomic.Bool
}

func (r *pubReq) finish(err error) {
	if r.finished.CompareAndSwap(false, true) {
		r.done(err)
	}
}

// publisher owns the bounded queue of records to publish and the workers
// that publish them while the connection is up.
type publisher struct {
	c      *Conn
	mu     sync.Mutex
	q      []*pubReq // FIFO; q[head:] are live
	head   int
	closed bool
	wake   chan struct{} // one token per push (dropped when full): wakes one worker
	space  signal        // notified on pop
	idle   signal        // notified when queue empty and nothing in flight

	inflight   int
	flightMu   sync.Mutex
	flights    map[*pubReq]context.CancelCauseFunc
	wg         sync.WaitGroup
	published  atomic.Uint64
	failed     atomic.Uint64
	dropped    atomic.Uint64
	stopWorker context.CancelFunc
	workCtx    context.Context
}

func newPublisher(c *Conn) *publisher {
	p := &publisher{c: c, flights: map[*pubReq]context.CancelCauseFunc{}, wake: make(chan struct{}, c.cfg.MaxInflight)}
	p.workCtx, p.stopWorker = context.WithCancel(context.Background())
	return p
}

func (p *publisher) start() {
	for i := 0; i < p.c.cfg.MaxInflight; i++ {
		p.wg.Add(1)
		go p.worker()
	}
	p.wg.Add(1)
	go p.expire()
}

// expire fails queued records whose publish timeout passed while the
// connection was down (while it is up, the workers check deadlines).
func (p *publisher) expire() {
	defer p.wg.Done()
	every := min(max(p.c.cfg.PublishTimeout/4, 10*time.Millisecond), 250*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-p.workCtx.Done():
			return
		}
		if p.c.out.up.Load() {
			continue
		}
		now := time.Now()
		var expired []*pubReq
		p.mu.Lock()
		live := p.q[p.head:]
		keep := live[:0]
		for _, r := range live {
			if !now.Before(r.deadline) || r.state.Load() == 2 {
				expired = append(expired, r)
				continue
			}
			keep = append(keep, r)
		}
		clear(live[len(keep):])
		p.q = p.q[:p.head+len(keep)]
		p.mu.Unlock()
		if len(expired) > 0 {
			p.space.notify()
		}
		for _, r := range expired {
			if r.state.CompareAndSwap(0, 1) {
				p.fail(r, fmt.Errorf("mqtt: publish to %s not sent within %v (disconnected): %w", r.p.Topic, p.c.cfg.PublishTimeout, context.DeadlineExceeded))
			}
		}
	}
}

func (p *publisher) stats(s *Stats) {
	s.Published, s.PublishErrors, s.Dropped = p.published.Load(), p.failed.Load(), p.dropped.Load()
	p.mu.Lock()
	s.Queued = len(p.q) - p.head
	p.mu.Unlock()
}

func (p *publisher) lenLocked() int { return len(p.q) - p.head }

func (p *publisher) queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lenLocked()
}

// enqueue adds r, applying the offline policy when the queue is full.
func (p *publisher) enqueue(ctx context.Context, r *pubReq) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return ErrClosed
		}
		if p.lenLocked() < p.c.cfg.OfflineQueue {
			p.pushLocked(r)
			p.mu.Unlock()
			p.signalItem()
			return nil
		}
		if !p.c.out.up.Load() && p.c.cfg.OfflinePolicy == DropOldest {
			old := p.popLocked()
			p.pushLocked(r)
			p.mu.Unlock()
			p.signalItem()
			if old != nil {
				p.dropped.Add(1)
				old.finish(ErrDropped)
			}
			return nil
		}
		wait := p.space.wait()
		p.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(r.deadline))
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("mqtt: offline queue full: %w", ctx.Err())
		case <-timer.C:
			return fmt.Errorf("mqtt: offline queue full for %v: %w", p.c.cfg.PublishTimeout, context.DeadlineExceeded)
		}
	}
}

func (p *publisher) signalItem() {
	select {
	case p.wake <- struct{}{}:
	default: // enough tokens pending: a worker is about to look
	}
}

func (p *publisher) pushLocked(r *pubReq) {
	if p.head > 0 && p.head == len(p.q) {
		p.q, p.head = p.q[:0], 0
	} else if p.head > 1024 && p.head*2 > len(p.q) {
		n := copy(p.q, p.q[p.head:])
		clear(p.q[n:])
		p.q, p.head = p.q[:n], 0
	}
	p.q = append(p.q, r)
}

func (p *publisher) pushFrontLocked(r *pubReq) {
	if p.head > 0 {
		p.head--
		p.q[p.head] = r
		return
	}
	p.q = append(p.q, nil)
	copy(p.q[1:], p.q)
	p.q[0] = r
}

func (p *publisher) popLocked() *pubReq {
	if p.head == len(p.q) {
		return nil
	}
	r := p.q[p.head]
	p.q[p.head] = nil
	p.head++
	return r
}

// next waits for a queued record and a live connection.
func (p *publisher) next() *pubReq {
	for {
		up := p.c.out.upSignal.wait()
		if !p.c.out.up.Load() {
			select {
			case <-up:
				continue
			case <-p.workCtx.Done():
				return nil
			}
		}
		p.mu.Lock()
		r := p.popLocked()
		if r != nil {
			p.inflight++
			more := p.lenLocked() > 0
			p.mu.Unlock()
			if more {
				p.signalItem() // pass the baton: another worker takes the next one
			}
			p.space.notify()
			return r
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-up: // connection state changed (e.g. went down)
		case <-p.workCtx.Done():
			return nil
		}
	}
}

func (p *publisher) doneInflight() {
	p.mu.Lock()
	p.inflight--
	idle := p.inflight == 0 && p.lenLocked() == 0
	p.mu.Unlock()
	if idle {
		p.idle.notify()
	}
}

func (p *publisher) worker() {
	defer p.wg.Done()
	for {
		r := p.next()
		if r == nil {
			return
		}
		p.send(r)
		p.doneInflight()
	}
}

// send publishes r once; connection and session failures put it back at
// the front of the queue until its deadline.
func (p *publisher) send(r *pubReq) {
	if !r.state.CompareAndSwap(0, 1) {
		return // abandoned by its caller
	}
	if !time.Now().Before(r.deadline) {
		p.fail(r, fmt.Errorf("mqtt: publish to %s timed out after %v: %w", r.p.Topic, p.c.cfg.PublishTimeout, context.DeadlineExceeded))
		return
	}
	retry, err := p.attempt(p.workCtx, r)
	switch {
	case retry:
		// Not sent, or sent on a connection whose session is gone: retry
		// first thing on the next connection.
		r.state.Store(0)
		p.mu.Lock()
		p.pushFrontLocked(r)
		p.mu.Unlock()
		p.signalItem()
	case err != nil:
		p.fail(r, err)
	default:
		p.published.Add(1)
		r.finish(nil)
	}
}

// attempt publishes r once and waits for the broker's confirmation. retry
// reports a connection-level failure after which r may be sent again;
// otherwise err is the final outcome (nil, a broker rejection, a timeout).
func (p *publisher) attempt(parent context.Context, r *pubReq) (retry bool, err error) {
	ctx, cancel := context.WithDeadline(parent, r.deadline)
	cctx, cancelCause := context.WithCancelCause(ctx)
	p.flightMu.Lock()
	p.flights[r] = cancelCause
	p.flightMu.Unlock()
	resp, err := p.c.out.cm.Publish(cctx, r.p)
	p.flightMu.Lock()
	delete(p.flights, r)
	p.flightMu.Unlock()
	cause := context.Cause(cctx)
	cancelCause(nil)
	cancel()
	switch {
	case err == nil && (resp == nil || resp.ReasonCode < 0x80):
		return false, nil
	case resp != nil && resp.ReasonCode >= 0x80:
		reason := ""
		if resp.Properties != nil && resp.Properties.ReasonString != "" {
			reason = ": " + resp.Properties.ReasonString
		}
		return false, &RejectedError{Topic: r.p.Topic, Code: resp.ReasonCode, Reason: reason}
	case errors.Is(err, paho.ErrInvalidArguments):
		return false, &RejectedError{Topic: r.p.Topic, Err: err}
	case p.workCtx.Err() != nil:
		return false, ErrClosed
	case parent.Err() != nil:
		return false, fmt.Errorf("mqtt: publish to %s: %w", r.p.Topic, parent.Err())
	case time.Now().Before(r.deadline) && (errors.Is(cause, errSessionLost) || errors.Is(err, autopaho.ConnectionDownError) || !p.c.out.up.Load() || isConnErr(err)):
		return true, err
	case errors.Is(err, context.DeadlineExceeded) || !time.Now().Before(r.deadline):
		return false, fmt.Errorf("mqtt: publish to %s not confirmed within %v: %w", r.p.Topic, p.c.cfg.PublishTimeout, context.DeadlineExceeded)
	default:
		return false, fmt.Errorf("mqtt: publish to %s: %w", r.p.Topic, err)
	}
}

func isConnErr(err error) bool {
	if err == nil {
		return false
	}
	var ne interface{ Timeout() bool }
	// session.ErrNoConnection: the connection dropped between our check
	// of its state and paho adding the packet to the session.
	return errors.As(err, &ne) || errors.Is(err, context.Canceled) || errors.Is(err, session.ErrNoConnection) ||
		err.Error() == "PUBLISH transmitted but not fully acknowledged at time of shutdown"
}

func (p *publisher) fail(r *pubReq, err error) {
	p.failed.Add(1)
	r.finish(err)
}

// connectionUp: when the broker did not resume the session, publishes
// awaiting acknowledgement from the previous connection will never be
// confirmed; cancel them so they are sent again.
func (p *publisher) connectionUp(sessionPresent bool) {
	if !sessionPresent {
		p.cancelFlights()
	}
}

// connectionDown: with a session that ends with the connection, in-flight
// publishes are lost; cancel them so they are re-queued.
func (p *publisher) connectionDown(sessionEnds bool) {
	if sessionEnds {
		p.cancelFlights()
	}
}

func (p *publisher) cancelFlights() {
	p.flightMu.Lock()
	defer p.flightMu.Unlock()
	for _, cancel := range p.flights {
		cancel(errSessionLost)
	}
}

// close stops accepting records, waits (within ctx) until the queue is
// empty and nothing is in flight, then fails whatever is left.
func (p *publisher) close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	var err error
	for {
		p.mu.Lock()
		idle := p.inflight == 0 && p.lenLocked() == 0
		wait := p.idle.wait()
		n := p.lenLocked() + p.inflight
		p.mu.Unlock()
		if idle {
			break
		}
		select {
		case <-wait:
			continue
		case <-time.After(50 * time.Millisecond):
			continue // re-check (a worker may have finished without notify races)
		case <-ctx.Done():
			err = fmt.Errorf("mqtt: %d publishes not confirmed at close: %w", n, ctx.Err())
		}
		break
	}
	p.stopWorker()
	p.wg.Wait()
	p.mu.Lock()
	left := p.q[p.head:]
	p.q, p.head = nil, 0
	p.mu.Unlock()
	for _, r := range left {
		if r.state.CompareAndSwap(0, 1) {
			p.fail(r, ErrClosed)
		}
	}
	return err
}

// newReq builds the PUBLISH for env, copying everything it keeps.
func (c *Conn) newReq(ctx context.Context, dest string, opts any, env *pipeline.Envelope) *pubReq {
	o := kit.LinkOptions(opts, Out{QoS: 1})
	payload := make([]byte, len(env.Payload))
	copy(payload, env.Payload)
	r := &pubReq{}
	r.pkt = paho.Publish{QoS: o.QoS, Retain: o.Retain, Topic: dest, Payload: payload, Properties: pubProperties(o, env.Headers)}
	r.p = &r.pkt
	r.deadline = time.Now().Add(c.cfg.PublishTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(r.deadline) {
		r.deadline = d
	}
	return r
}

// pubProps holds a publish's properties with room for a few user
// properties and the message expiry, so that they take one allocation.
type pubProps struct {
	p    paho.PublishProperties
	user [2]paho.UserProperty
	exp  uint32
}

// pubProperties builds the properties of a publish: the envelope headers
// as user properties, in order, except the content-type header (in any
// case, kit.IsContentType), which becomes the MQTT 5 content type unless
// the link sets one; the link's message expiry. It returns nil when there
// are none, and allocates once for up to two user properties (traceparent
// and tracestate), twice for more.
func pubProperties(o Out, hs pipeline.Headers) *paho.PublishProperties {
	ct := o.ContentType
	users := 0
	for _, h := range hs {
		if !kit.IsContentType(h.Key) {
			users++
		} else if ct == "" {
			ct = h.Value
		}
	}
	if users == 0 && ct == "" && o.MessageExpiry <= 0 {
		return nil
	}
	pp := &pubProps{}
	props := &pp.p
	if users > 0 {
		dst := pp.user[:0]
		if users > len(pp.user) {
			dst = make([]paho.UserProperty, 0, users)
		}
		props.User = kit.AppendPairs(dst, hs, kit.IsContentType, mkUser)
	}
	props.ContentType = ct
	if o.MessageExpiry > 0 {
		pp.exp = uint32(min(max(o.MessageExpiry/time.Second, 1), math.MaxUint32))
		props.MessageExpiry = &pp.exp
	}
	return props
}

func mkUser(key, value string) paho.UserProperty { return paho.UserProperty{Key: key, Value: value} }

// Publish implements pipeline.Connector: it returns once the broker
// confirmed the message (PUBACK for QoS 1, PUBCOMP for QoS 2, written for
// QoS 0), or with an error when ctx ends or the publish timeout passes
// first. A publish that timed out may still be delivered later.
func (c *Conn) Publish(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	if err := checkDestination(dest); err != nil {
		c.pub.failed.Add(1)
		return err
	}
	r := c.newReq(ctx, dest, opts, env)
	if c.out.up.Load() && c.pub.queued() == 0 {
		// Connected and nothing waiting ahead: publish from the caller's
		// goroutine, no hand-off.
		r.state.Store(1)
		retry, err := c.pub.attempt(ctx, r)
		if !retry {
			if err != nil {
				c.pub.failed.Add(1)
			} else {
				c.pub.published.Add(1)
			}
			return err
		}
		r.state.Store(0) // connection lost meanwhile: queue it
	}
	ch := make(chan error, 1)
	r.done = func(err error) { ch <- err }
	if err := c.pub.enqueue(ctx, r); err != nil {
		return err
	}
	t := time.NewTimer(time.Until(r.deadline))
	defer t.Stop()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		r.state.CompareAndSwap(0, 2)
		return fmt.Errorf("mqtt: publish to %s: %w", dest, ctx.Err())
	case <-t.C:
		if r.state.CompareAndSwap(0, 2) {
			c.pub.failed.Add(1)
		}
		return fmt.Errorf("mqtt: publish to %s not confirmed within %v: %w", dest, c.cfg.PublishTimeout, context.DeadlineExceeded)
	}
}

// AsyncConn is the connector built with Config.AsyncPublish: a Conn that
// also implements pipeline.AsyncPublisher.
type AsyncConn struct{ *Conn }

var _ pipeline.AsyncPublisher = AsyncConn{}

// PublishAsync implements pipeline.AsyncPublisher: it queues the record
// (blocking only while the queue is full, see OfflinePolicy) and finishes
// env.Ack with the outcome once the broker confirmed it or the publish
// timeout passed. Up to Config.MaxInflight publishes are in flight at once,
// so their order on the wire may differ slightly; MaxInflight 1 keeps it.
//
// The runner owns what follows a failure (see pipeline.Permanent): a
// permanent rejection (*RejectedError that is not Retryable: the broker
// refused the record as not authorized, invalid, ...) is reported as
// pipeline.Permanent(err), which the runner dead-letters with the
// record's provenance; transient failures (the publish timeout passed
// while disconnected or unconfirmed, a retryable reason code, a record
// dropped by drop-oldest, the connector closed) are plain errors, so the
// source message is rejected and redelivered. A destination that is not a
// topic name fails the hand-off itself.
func (a AsyncConn) PublishAsync(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	c := a.Conn
	if err := checkDestination(dest); err != nil {
		c.pub.failed.Add(1)
		return err
	}
	r := c.newReq(ctx, dest, opts, env)
	r.deadline = time.Now().Add(c.cfg.PublishTimeout) // the hand-off ctx ends with this call
	ack := env.Ack
	r.done = func(err error) { ack.Finish(asyncOutcome(err)) }
	return c.pub.enqueue(ctx, r)
}

// asyncOutcome classifies the outcome of an asynchronous publish for the
// runner: a permanent rejection is marked pipeline.Permanent, anything
// else is returned as it is (nil, or a transient failure).
func asyncOutcome(err error) error {
	var rej *RejectedError
	if errors.As(err, &rej) && !rej.Retryable() {
		return pipeline.Permanent(err)
	}
	return err
}
