package mqtt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"
	"github.com/eclipse/paho.golang/paho/session/state"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Outbound publishing.
//
// A record is sent from the goroutine that hands it over, in turn: one
// sender at a time per connector (publisher.turn), so records leave in the
// order they were handed over. The sender takes one of max_inflight slots,
// a packet identifier from paho's session state (which keeps the packet to
// resend it on a resumed session) and writes the PUBLISH, encoded into a
// reused buffer, to the connection. Its confirmation (PUBACK, PUBCOMP, or a
// failure reason code) finishes the record where paho's reader goroutine
// hands it to the session (connSession.PacketReceived): no goroutine
// waits per publish and none is woken to send one. A synchronous Publish
// waits for that confirmation; PublishAsync returns after the write.
//
// While disconnected, and while earlier records still wait, records are
// queued (the offline queue); one drainer goroutine sends them in order
// once connected. When a connection ends with its session (session expiry
// 0), or the broker did not resume the session, the publishes it had not
// confirmed go back to the head of the queue and are sent again
// (at-least-once: one may arrive twice).

// ErrDropped is reported for a record that the drop-oldest offline policy
// removed from a full offline queue.
var ErrDropped = errors.New("mqtt: dropped from the full offline queue (policy drop-oldest)")

// RejectedError is a permanent publish failure: the broker answered with a
// failure reason code (not authorized, quota exceeded, ...) or the client
// refused the packet as invalid. Retrying cannot help, so the record is
// dead-lettered when the graph has a destination.
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
	return fmt.Sprintf("mqtt: broker rejected publish to %s: reason 0x%02x%s", e.Topic, e.Code, e.Reason)
}

func (e *RejectedError) Unwrap() error { return e.Err }

// ErrClosed is reported for records still queued when the connector closed.
var ErrClosed = errors.New("mqtt: connector closed")

// errNotConnected: the record was not handed to a connection; it waits in
// the queue for the next one.
var errNotConnected = errors.New("mqtt: not connected")

// pubReq is one record to publish.
type pubReq struct {
	// pkt is the PUBLISH; paho's session store keeps a pointer to it until
	// it is confirmed, so it is not modified once sent (a record is sent
	// again only after its session was lost, which empties the store).
	pkt      packets.Publish
	deadline time.Time
	seq      uint64 // send order (publisher.fmu)
	// Exactly one of sync and ack is how the outcome is reported: to a
	// waiting Publish, or to the record's ack (PublishAsync; ack may be
	// nil for sources without acknowledgements).
	sync      chan error
	async     bool
	ack       *pipeline.Ack
	abandoned atomic.Bool // the synchronous caller gave up: do not send it
	finished  atomic.Bool
}

// pubLink is the connection records are written to, with what the broker
// allows on it.
type pubLink struct {
	w      io.Writer
	maxQoS byte
	retain bool
}

// publisher owns the offline queue, the publishes awaiting confirmation
// and the drainer goroutine.
type publisher struct {
	c    *Conn
	sess *state.State
	// turn is held (one token, capacity 1) by whoever sends: records leave
	// in the order they were handed over.
	turn chan struct{}
	buf  []byte      // encoding buffer of the turn holder
	copy payloadSlab // payload copies, made by the turn holder
	// ret is handed to paho's state for every QoS>0 publish: the state
	// sends each publish's final acknowledgement to it, from PacketReceived
	// (confirmed is called there instead), which takes it out again at
	// once, so it never holds more than one packet. One shared channel
	// instead of one per publish.
	ret chan packets.ControlPacket

	mu     sync.Mutex
	q      []*pubReq // FIFO; q[head:] are live
	head   int
	closed bool
	more   chan struct{} // wakes the drainer (capacity 1)
	space  signal        // notified on pop

	fmu      sync.Mutex
	flights  map[uint16]*pubReq // written, awaiting confirmation
	reserved int                // slots in use: flights plus sends under way
	limit    int                // min(MaxInflight, the broker's receive maximum)
	seq      uint64
	expiry   uint32 // session expiry of the connection, as paho's state reckons it
	freed    signal // notified when a slot is released

	link atomic.Pointer[pubLink] // nil while disconnected

	wg         sync.WaitGroup
	published  atomic.Uint64
	failed     atomic.Uint64
	dropped    atomic.Uint64
	unreported atomic.Uint64 // failures with no ack to report them to
	stopWorker context.CancelFunc
	workCtx    context.Context
}

func newPublisher(c *Conn) *publisher {
	p := &publisher{c: c, turn: make(chan struct{}, 1), more: make(chan struct{}, 1),
		flights: map[uint16]*pubReq{}, limit: c.cfg.MaxInflight, ret: make(chan packets.ControlPacket, 8)}
	p.workCtx, p.stopWorker = context.WithCancel(context.Background())
	return p
}

func (p *publisher) start() {
	p.wg.Add(2)
	go p.drain()
	go p.expire()
}

func (p *publisher) stats(s *Stats) {
	s.Published, s.PublishErrors, s.Dropped = p.published.Load(), p.failed.Load(), p.dropped.Load()
	p.mu.Lock()
	s.Queued = len(p.q) - p.head
	p.mu.Unlock()
}

// ---- connection changes (from connSession) ----

// connected binds a new connection.
func (p *publisher) connected(w io.Writer, cp *packets.Connect, ca *packets.Connack) {
	l := &pubLink{w: w, maxQoS: 2, retain: true}
	recvMax := 65535
	var expiry uint32
	if pr := ca.Properties; pr != nil {
		if pr.MaximumQOS != nil {
			l.maxQoS = *pr.MaximumQOS
		}
		if pr.RetainAvailable != nil {
			l.retain = *pr.RetainAvailable == 1
		}
		if pr.ReceiveMaximum != nil {
			recvMax = int(*pr.ReceiveMaximum)
		}
	}
	// As paho's state: the CONNACK's session expiry, else the CONNECT's.
	switch {
	case ca.Properties != nil && ca.Properties.SessionExpiryInterval != nil:
		expiry = *ca.Properties.SessionExpiryInterval
	case cp.Properties != nil && cp.Properties.SessionExpiryInterval != nil:
		expiry = *cp.Properties.SessionExpiryInterval
	}
	p.fmu.Lock()
	p.limit = max(min(p.c.cfg.MaxInflight, recvMax), 1)
	p.expiry = expiry
	p.fmu.Unlock()
	p.link.Store(l)
	p.freed.notify()
	p.wakeDrainer()
}

// disconnected unbinds the connection; if the session ends with it, the
// unconfirmed publishes are queued again.
func (p *publisher) disconnected(dp *packets.Disconnect) {
	p.link.Store(nil)
	defer p.freed.notify() // a sender waiting for a slot queues its record instead
	p.fmu.Lock()
	expiry := p.expiry
	p.fmu.Unlock()
	if dp != nil && dp.Properties != nil && dp.Properties.SessionExpiryInterval != nil {
		expiry = *dp.Properties.SessionExpiryInterval
	}
	if expiry == 0 {
		p.sessionLost()
	}
}

// sessionLost queues every unconfirmed publish again, at the head of the
// queue in the order they were sent: their session state is gone, so they
// will never be confirmed.
func (p *publisher) sessionLost() {
	p.fmu.Lock()
	lost := make([]*pubReq, 0, len(p.flights))
	for _, r := range p.flights {
		lost = append(lost, r)
	}
	clear(p.flights)
	p.reserved -= len(lost)
	p.fmu.Unlock()
	if len(lost) == 0 {
		return
	}
	slices.SortFunc(lost, func(a, b *pubReq) int { return cmp.Compare(a.seq, b.seq) })
	p.mu.Lock()
	for i := len(lost) - 1; i >= 0; i-- {
		if !lost[i].abandoned.Load() {
			p.pushFrontLocked(lost[i])
		}
	}
	p.mu.Unlock()
	p.freed.notify()
	p.wakeDrainer()
}

// take removes the publish awaiting confirmation under packet identifier
// id (nil if none: confirmed after its timeout, or not ours).
func (p *publisher) take(id uint16) *pubReq {
	p.fmu.Lock()
	defer p.fmu.Unlock()
	r := p.flights[id]
	if r != nil {
		delete(p.flights, id)
	}
	return r
}

// confirmed finishes r with the broker's final answer, then frees its
// slot (so that close, once nothing is in flight, finds every outcome
// reported). It runs on paho's reader goroutine and never blocks.
func (p *publisher) confirmed(r *pubReq, code byte, props *packets.Properties) {
	defer p.release()
	if code >= 0x80 {
		reason := ""
		if props != nil && props.ReasonString != "" {
			reason = ": " + props.ReasonString
		}
		p.fail(r, &RejectedError{Topic: r.pkt.Topic, Code: code, Reason: reason})
		return
	}
	p.published.Add(1)
	p.finish(r, nil)
}

// ---- slots ----

// reserve takes a slot for one publish, waiting while max_inflight are
// awaiting confirmation (until ctx ends or r's deadline passes). It gives
// up with errNotConnected when the connection is lost meanwhile (the
// record then waits in the offline queue, not in the sender's turn).
func (p *publisher) reserve(ctx context.Context, r *pubReq) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		p.fmu.Lock()
		if p.reserved < p.limit {
			p.reserved++
			p.fmu.Unlock()
			return nil
		}
		freed := p.freed.wait()
		p.fmu.Unlock()
		if p.link.Load() == nil {
			return errNotConnected
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(r.deadline))
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return fmt.Errorf("mqtt: publish to %s: %w", r.pkt.Topic, ctx.Err())
		case <-p.workCtx.Done():
			return ErrClosed
		case <-timer.C:
			return fmt.Errorf("mqtt: publish to %s: %d publishes awaited confirmation for %v: %w",
				r.pkt.Topic, p.c.cfg.MaxInflight, p.c.cfg.PublishTimeout, context.DeadlineExceeded)
		}
	}
}

func (p *publisher) release() {
	p.fmu.Lock()
	p.reserved--
	p.fmu.Unlock()
	p.freed.notify()
}

// ---- sending ----

// submit hands r over: sent at once when connected and nothing waits
// ahead of it, queued otherwise. A non-nil error means r was not taken (its
// outcome will not be reported).
func (p *publisher) submit(ctx context.Context, r *pubReq) error {
	select {
	case p.turn <- struct{}{}:
	default:
		select {
		case p.turn <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("mqtt: publish to %s: %w", r.pkt.Topic, ctx.Err())
		case <-p.workCtx.Done():
			return ErrClosed
		}
	}
	// The caller reuses its envelope: keep a copy of the payload.
	r.pkt.Payload = p.copy.copy(r.pkt.Payload)
	p.mu.Lock()
	closed, direct := p.closed, p.lenLocked() == 0
	p.mu.Unlock()
	if closed {
		<-p.turn
		return ErrClosed
	}
	if direct && p.link.Load() != nil {
		err := p.send(ctx, r)
		<-p.turn
		if !errors.Is(err, errNotConnected) {
			if err != nil {
				p.failed.Add(1)
			}
			return err
		}
	} else {
		<-p.turn
	}
	return p.enqueue(ctx, r)
}

// send publishes r; the caller holds the turn. nil means r was written
// (QoS 0: and finished); errNotConnected that it was not sent.
func (p *publisher) send(ctx context.Context, r *pubReq) error {
	l := p.link.Load()
	if l == nil {
		return errNotConnected
	}
	if err := l.check(&r.pkt); err != nil {
		return err
	}
	if err := p.reserve(ctx, r); err != nil {
		return err
	}
	pb := &r.pkt
	if pb.QoS > 0 {
		if err := p.sess.AddToSession(p.workCtx, pb, p.ret); err != nil {
			p.release()
			switch {
			case errors.Is(err, session.ErrNoConnection):
				return errNotConnected
			case p.workCtx.Err() != nil:
				return ErrClosed
			}
			return fmt.Errorf("mqtt: publish to %s: %w", pb.Topic, err)
		}
		p.fmu.Lock()
		p.seq++
		r.seq = p.seq
		p.flights[pb.PacketID] = r
		p.fmu.Unlock()
		if l = p.link.Load(); l == nil {
			return nil // in the session: resent, or queued again by sessionLost
		}
	}
	p.buf = appendPublish(p.buf[:0], pb)
	err := writePacket(l.w, p.buf, p.c)
	if cap(p.buf) > 64<<10 {
		p.buf = nil // do not keep a large payload's buffer
	}
	if pb.QoS > 0 {
		// Written or not, the packet is in the session: paho's state
		// resends it on a resumed session, sessionLost queues it again
		// otherwise.
		return nil
	}
	p.release()
	if err != nil {
		return errNotConnected
	}
	p.published.Add(1)
	p.finish(r, nil)
	return nil
}

// check refuses what the broker said it does not support (as paho's
// Publish does).
func (l *pubLink) check(pb *packets.Publish) error {
	var err error
	switch {
	case pb.QoS > l.maxQoS:
		err = fmt.Errorf("%w: cannot send Publish with QoS %d, server maximum QoS is %d", paho.ErrInvalidArguments, pb.QoS, l.maxQoS)
	case pb.Retain && !l.retain:
		err = fmt.Errorf("%w: cannot send Publish with retain flag set, server does not support retained messages", paho.ErrInvalidArguments)
	case pb.Topic == "":
		err = fmt.Errorf("%w: cannot send a publish with no topic", paho.ErrInvalidArguments)
	default:
		return nil
	}
	return &RejectedError{Topic: pb.Topic, Err: err}
}

// writePacket writes one whole packet under the connection's packet lock.
// A failed write closes the connection (part of a packet may have been
// written), so paho notices and autopaho reconnects.
func writePacket(w io.Writer, b []byte, c *Conn) error {
	if l, ok := w.(sync.Locker); ok {
		l.Lock()
		defer l.Unlock()
	}
	_, err := w.Write(b)
	if err != nil {
		c.log.Debug("mqtt write failed; reconnecting", "error", err)
		if cl, ok := w.(io.Closer); ok {
			_ = cl.Close()
		}
	}
	return err
}

// ---- the queue ----

func (p *publisher) lenLocked() int { return len(p.q) - p.head }

func (p *publisher) wakeDrainer() {
	select {
	case p.more <- struct{}{}:
	default: // already due
	}
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
			p.wakeDrainer()
			return nil
		}
		if p.link.Load() == nil && p.c.cfg.OfflinePolicy == DropOldest {
			old := p.popLocked()
			p.pushLocked(r)
			p.mu.Unlock()
			p.wakeDrainer()
			if old != nil {
				p.dropped.Add(1)
				p.finish(old, ErrDropped)
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

// drain sends queued records, in order, while connected.
func (p *publisher) drain() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		n := p.lenLocked()
		p.mu.Unlock()
		if n == 0 || p.link.Load() == nil {
			select {
			case <-p.more:
				continue
			case <-p.workCtx.Done():
				return
			}
		}
		select {
		case p.turn <- struct{}{}:
		case <-p.workCtx.Done():
			return
		}
		p.mu.Lock()
		r := p.popLocked()
		p.mu.Unlock()
		if r != nil {
			p.space.notify()
			p.sendQueued(r)
		}
		<-p.turn
	}
}

// sendQueued sends a record taken from the queue (holding the turn).
func (p *publisher) sendQueued(r *pubReq) {
	if r.abandoned.Load() {
		return
	}
	if !time.Now().Before(r.deadline) {
		p.fail(r, fmt.Errorf("mqtt: publish to %s not sent within %v: %w", r.pkt.Topic, p.c.cfg.PublishTimeout, context.DeadlineExceeded))
		return
	}
	switch err := p.send(p.workCtx, r); {
	case err == nil:
	case errors.Is(err, errNotConnected):
		p.mu.Lock()
		p.pushFrontLocked(r)
		p.mu.Unlock()
	default:
		p.fail(r, err)
	}
}

// expire fails records whose publish timeout passed: queued ones, and
// written ones still awaiting confirmation. It runs every quarter of the
// publish timeout (between 10 ms and 250 ms).
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
		now := time.Now()
		var unconfirmed []*pubReq
		p.fmu.Lock()
		for id, r := range p.flights {
			if !now.Before(r.deadline) || r.abandoned.Load() {
				delete(p.flights, id)
				unconfirmed = append(unconfirmed, r)
			}
		}
		p.reserved -= len(unconfirmed)
		p.fmu.Unlock()
		if len(unconfirmed) > 0 {
			p.freed.notify()
		}
		for _, r := range unconfirmed {
			// It may still be confirmed, or delivered, later.
			p.fail(r, fmt.Errorf("mqtt: publish to %s not confirmed within %v: %w", r.pkt.Topic, p.c.cfg.PublishTimeout, context.DeadlineExceeded))
		}
		var unsent []*pubReq
		p.mu.Lock()
		live := p.q[p.head:]
		keep := live[:0]
		for _, r := range live {
			if !now.Before(r.deadline) || r.abandoned.Load() {
				unsent = append(unsent, r)
				continue
			}
			keep = append(keep, r)
		}
		clear(live[len(keep):])
		p.q = p.q[:p.head+len(keep)]
		p.mu.Unlock()
		if len(unsent) > 0 {
			p.space.notify()
		}
		for _, r := range unsent {
			p.fail(r, fmt.Errorf("mqtt: publish to %s not sent within %v: %w", r.pkt.Topic, p.c.cfg.PublishTimeout, context.DeadlineExceeded))
		}
	}
}

// ---- outcomes ----

func (p *publisher) fail(r *pubReq, err error) {
	if !r.abandoned.Load() {
		p.failed.Add(1)
	}
	p.finish(r, err)
}

// finish reports r's outcome, once.
func (p *publisher) finish(r *pubReq, err error) {
	if !r.finished.CompareAndSwap(false, true) || r.abandoned.Load() {
		return
	}
	if !r.async {
		r.sync <- err // buffered: never blocks
		return
	}
	p.c.asyncDone(r, err)
}

// close stops accepting records, waits (within ctx) until nothing is
// queued or awaiting confirmation, then fails whatever is left.
func (p *publisher) close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	var err error
	for {
		freed := p.freed.wait()
		n, ok := p.pending(ctx)
		if !ok {
			err = fmt.Errorf("mqtt: publishes not confirmed at close: %w", ctx.Err())
			break
		}
		if n == 0 {
			break
		}
		select {
		case <-freed:
			continue
		case <-time.After(50 * time.Millisecond):
			continue // re-check: a queued record may have expired
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
	p.fmu.Lock()
	for _, r := range p.flights {
		left = append(left, r)
	}
	clear(p.flights)
	p.fmu.Unlock()
	for _, r := range left {
		p.fail(r, ErrClosed)
	}
	return err
}

// pending counts the records queued or awaiting confirmation. It takes
// the turn, so that no record is between the queue and its slot; ok is
// false if ctx ended first.
func (p *publisher) pending(ctx context.Context) (n int, ok bool) {
	select {
	case p.turn <- struct{}{}:
	case <-ctx.Done():
		return 0, false
	}
	defer func() { <-p.turn }()
	p.mu.Lock()
	n = p.lenLocked()
	p.mu.Unlock()
	p.fmu.Lock()
	n += p.reserved
	p.fmu.Unlock()
	return n, true
}

// ---- encoding ----

// appendPublish appends the MQTT 5 PUBLISH packet pb to b: the same bytes
// as paho's WriteTo, built in one reused buffer instead of several
// allocations per packet.
func appendPublish(b []byte, pb *packets.Publish) []byte {
	props := pb.Properties
	var packed []byte
	if props != nil && !plainProps(props) {
		packed = props.Pack(packets.PUBLISH)
	}
	propLen := len(packed)
	if packed == nil {
		propLen = plainPropsLen(props)
	}
	n := 2 + min(len(pb.Topic), 65535) + vbiLen(propLen) + propLen + len(pb.Payload)
	if pb.QoS > 0 {
		n += 2
	}
	flags := packets.PUBLISH<<4 | pb.QoS<<1
	if pb.Duplicate {
		flags |= 1 << 3
	}
	if pb.Retain {
		flags |= 1
	}
	b = append(b, flags)
	b = appendVBI(b, n)
	b = appendString(b, pb.Topic)
	if pb.QoS > 0 {
		b = append(b, byte(pb.PacketID>>8), byte(pb.PacketID))
	}
	b = appendVBI(b, propLen)
	if packed != nil {
		b = append(b, packed...)
	} else if props != nil {
		if props.MessageExpiry != nil {
			e := *props.MessageExpiry
			b = append(b, packets.PropMessageExpiry, byte(e>>24), byte(e>>16), byte(e>>8), byte(e))
		}
		if props.ContentType != "" {
			b = append(b, packets.PropContentType)
			b = appendString(b, props.ContentType)
		}
		for _, u := range props.User {
			b = append(b, packets.PropUser)
			b = appendString(b, u.Key)
			b = appendString(b, u.Value)
		}
	}
	return append(b, pb.Payload...)
}

// plainProps reports whether props holds only what the connector sets on
// a publish (message expiry, content type, user properties).
func plainProps(p *packets.Properties) bool {
	return p.PayloadFormat == nil && p.ResponseTopic == "" && len(p.CorrelationData) == 0 &&
		p.TopicAlias == nil && p.SubscriptionIdentifier == nil
}

func plainPropsLen(p *packets.Properties) int {
	if p == nil {
		return 0
	}
	n := 0
	if p.MessageExpiry != nil {
		n += 5
	}
	if p.ContentType != "" {
		n += 3 + min(len(p.ContentType), 65535)
	}
	for _, u := range p.User {
		n += 5 + min(len(u.Key), 65535) + min(len(u.Value), 65535)
	}
	return n
}

func vbiLen(n int) int {
	l := 1
	for n >= 128 {
		n /= 128
		l++
	}
	return l
}

func appendVBI(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// appendString appends an MQTT string (truncated to 65535 bytes, as paho
// does).
func appendString(b []byte, s string) []byte {
	s = s[:min(len(s), 65535)]
	b = append(b, byte(len(s)>>8), byte(len(s)))
	return append(b, s...)
}

// ---- the connector's publish calls ----

// newReq builds the PUBLISH for env. It refers to env's payload, which
// submit copies once it has the turn.
func (c *Conn) newReq(dest string, opts any, env *pipeline.Envelope, deadline time.Time) *pubReq {
	o := pubOptions(opts)
	r := &pubReq{deadline: deadline}
	r.pkt = packets.Publish{QoS: o.QoS, Retain: o.Retain, Topic: dest, Payload: env.Payload}
	ct := o.ContentType
	var props *packets.Properties
	for _, h := range env.Headers {
		if h.Key == HeaderContentType {
			if ct == "" {
				ct = h.Value
			}
			continue
		}
		if props == nil {
			props = &packets.Properties{}
		}
		props.User = append(props.User, packets.User{Key: h.Key, Value: h.Value})
	}
	if ct != "" || o.MessageExpiry > 0 {
		if props == nil {
			props = &packets.Properties{}
		}
		props.ContentType = ct
		if o.MessageExpiry > 0 {
			exp := uint32(max(o.MessageExpiry/time.Second, 1))
			props.MessageExpiry = &exp
		}
	}
	r.pkt.Properties = props
	return r
}

// Publish implements pipeline.Connector: it returns once the broker
// confirmed the message (PUBACK for QoS 1, PUBCOMP for QoS 2, written for
// QoS 0), or with an error when ctx ends or the publish timeout passes
// first (noticed within a quarter of the timeout, at most 250 ms). A
// publish that timed out may still be delivered later.
func (c *Conn) Publish(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	deadline := time.Now().Add(c.cfg.PublishTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	r := c.newReq(dest, opts, env, deadline)
	r.sync = make(chan error, 1)
	if err := c.pub.submit(ctx, r); err != nil {
		return err
	}
	select {
	case err := <-r.sync:
		return err
	case <-ctx.Done():
		r.abandoned.Store(true)
		return fmt.Errorf("mqtt: publish to %s: %w", dest, ctx.Err())
	}
}

// AsyncConn is the connector as built by default (without
// Config.SyncPublish): a Conn that also implements pipeline.AsyncPublisher.
type AsyncConn struct{ *Conn }

var _ pipeline.AsyncPublisher = AsyncConn{}

// PublishAsync implements pipeline.AsyncPublisher: it sends the record (or
// queues it while disconnected, blocking only while the queue is full, see
// OfflinePolicy, or while Config.MaxInflight publishes await confirmation)
// and finishes env.Ack with the outcome once the broker confirmed it or
// the publish timeout passed. Records are written in the order they are
// handed over; a record sent again after its session was lost may arrive
// after later ones (a duplicate, at-least-once).
//
// A permanent failure (*RejectedError: the broker refused the record) is
// dead-lettered through the graph's dead-letter destination when there is
// one, and the record acknowledged; otherwise, and for transient failures
// (timeouts, lost connections past the publish timeout), the source message
// is rejected so it is redelivered.
func (a AsyncConn) PublishAsync(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	c := a.Conn
	r := c.newReq(dest, opts, env, time.Now().Add(c.cfg.PublishTimeout)) // the hand-off ctx ends with this call
	r.async, r.ack = true, env.Ack
	return c.pub.submit(ctx, r)
}

// asyncDone reports the outcome of an asynchronous publish to its ack.
func (c *Conn) asyncDone(r *pubReq, err error) {
	ack := r.ack
	if err == nil {
		ack.Done()
		return
	}
	var rej *RejectedError
	if c.deadLetter == nil || !errors.As(err, &rej) {
		if ack == nil {
			// A source without acknowledgements: nothing else reports it.
			if n := c.pub.unreported.Add(1); n <= 10 || n%1000 == 0 {
				c.log.Warn("mqtt publish failed (the source has no acknowledgements)", "topic", r.pkt.Topic, "error", err, "count", n)
			}
		}
		ack.Nack(err)
		return
	}
	// Dead-letter off paho's reader goroutine, which must not wait for a
	// publish (the destination may be this connector).
	go func() {
		dl := pipeline.Envelope{Topic: r.pkt.Topic, Payload: r.pkt.Payload, Time: time.Now()}
		if r.pkt.Properties != nil {
			for _, u := range r.pkt.Properties.User {
				dl.Headers = append(dl.Headers, pipeline.Header{Key: u.Key, Value: u.Value})
			}
		}
		dctx, cancel := context.WithTimeout(context.Background(), c.cfg.PublishTimeout)
		defer cancel()
		if dlErr := c.deadLetter(dctx, &dl, r.pkt.Topic, err); dlErr != nil {
			ack.Finish(err)
			return
		}
		ack.Done()
	}()
}
