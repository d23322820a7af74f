package pipeline

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

// This file: the outbound side, encoding and publishing a record to a
// link, the record publishers, and dead-lettering with provenance.

func (r *Runner) deadLetter(ctx context.Context, dl *outRun, env *Envelope, pipeline, stage, rec, link string, cause error) error {
	r.deadLetters.Add(1)
	keep := r.opts.DeadLetterPayload
	if keep == 0 {
		keep = DefaultDeadLetterPayload
	}
	d := newDeadLetter(env, pipeline, stage, rec, link, cause, keep)
	if dl == nil {
		// No destination: count and log (the first 10, then every 1000th).
		if n := r.dlLogged.Add(1); n <= 10 || n%1000 == 0 {
			r.log.Warn("record dropped (no dead-letter destination)", "pipeline", pipeline, "stage", stage,
				"record", rec, "link", link, "topic", env.Topic, "error", d.Error, "count", n)
		}
		return nil
	}
	dest, err := dl.link.Dest.Render(env)
	if err != nil {
		dest = dl.link.Dest.String()
	}
	e := Envelope{Payload: d.Marshal(), Topic: dest, Key: env.Key, Headers: env.Headers, Time: time.Now(), Trace: env.Trace}
	if err := dl.publish(ctx, &e, false); err != nil {
		r.log.Error("dead-letter publish failed", "destination", dl.link.Raw, "error", ErrorText(err))
		return err
	}
	return nil
}

type outRun struct {
	r        *Runner
	link     *OutLink
	conn     Connector
	async    AsyncPublisher
	stats    linkStats
	pipeline string
	record   string
	encInfo  *HopInfo
	pubInfo  *HopInfo
	// passthrough: publish the original payload instead of encoding the
	// value (see ValuePreserver).
	passthrough bool
	// scratch is the outgoing envelope. An outRun is driven by one
	// goroutine (its pipeline's last segment or its publisher), and
	// publishers copy what they keep, so one envelope is reused.
	scratch Envelope
	// appendEnc is set when the encoder can append and the connector's
	// synchronous Publish never keeps the payload (PayloadCopier): records
	// are then encoded into buf, reused, instead of a fresh slice each.
	appendEnc AppendEncoder
	buf       []byte
	// flusher is the connector as a Flusher when it publishes
	// asynchronously in batches (nil otherwise); held is set when a
	// record was handed to it since its last Flush (see flush).
	flusher Flusher
	held    bool
	// dl is where records this link finally failed to publish go (the
	// pipeline's or the graph's dead-letter link; nil: none).
	dl *outRun
	// shares holds the acks of asynchronous publishes (see asyncShare).
	shares sharePool
}

// asyncShare is the ack an AsyncPublisher receives for one record: the
// runner, not the connector, decides what a failed outcome means (see
// Permanent). It keeps the record as handed off, for its dead letter.
// Shares are reused once settled (see sharePool), so that the
// asynchronous path allocates nothing per record.
type asyncShare struct {
	ack Ack
	o   *outRun
	env Envelope // env.Ack is the source message's ack (one share taken)
}

// Settle implements Settler: the connector finished the record. The share
// goes back to its pool before the outcome is applied; nothing touches it
// after that (Ack.release does not either, once its callback runs).
func (s *asyncShare) Settle(_ uint64, err error) {
	o := s.o
	if err == nil {
		src := s.env.Ack
		s.env = Envelope{}
		o.shares.put(s)
		src.Done()
		return
	}
	env := s.env
	s.env = Envelope{} // drop the payload references
	o.shares.put(s)
	o.settleAsync(&env, err)
}

// share returns a ready asyncShare holding a copy of env.
func (o *outRun) share(env *Envelope) *asyncShare {
	s := o.shares.get()
	s.o, s.env = o, *env
	s.ack.reinit(s, 0)
	return s
}

// sharePool recycles an outRun's asyncShares. get runs on the outbound
// loop's goroutine only; put on whichever goroutine the connector settles
// on. The loop takes the settled shares in bulk when its own list runs
// out, so a record costs one uncontended lock (in put), not an
// allocation; a slab of fresh shares is allocated only while more records
// are in flight than ever before.
type sharePool struct {
	local []*asyncShare // owned by get's goroutine
	total int           // shares allocated so far

	mu   sync.Mutex
	free []*asyncShare // settled, not yet taken back by get
}

// shareSlab is how many asyncShares are allocated at once.
const shareSlab = 64

func (p *sharePool) get() *asyncShare {
	if len(p.local) == 0 {
		p.mu.Lock()
		p.local, p.free = p.free, p.local[:0]
		p.mu.Unlock()
	}
	if len(p.local) == 0 {
		// Every share is in flight: a new slab, and room in both lists
		// for all shares, so that put and the swap never grow a slice.
		p.total += shareSlab
		slab := make([]asyncShare, shareSlab)
		p.local = make([]*asyncShare, 0, p.total)
		for i := range slab {
			p.local = append(p.local, &slab[i])
		}
		p.mu.Lock()
		if cap(p.free) < p.total {
			free := make([]*asyncShare, len(p.free), p.total)
			copy(free, p.free)
			p.free = free
		}
		p.mu.Unlock()
	}
	s := p.local[len(p.local)-1]
	p.local = p.local[:len(p.local)-1]
	return s
}

func (p *sharePool) put(s *asyncShare) {
	p.mu.Lock()
	p.free = append(p.free, s)
	p.mu.Unlock()
}

// settleAsync applies the runner's rule to an asynchronous outcome (see
// Permanent): success releases the source's share; a transient failure
// rejects it when the source can redeliver; a permanent one (or any, when
// it cannot) is dead-lettered with provenance, off the connector's
// goroutine, which must not wait on itself if the dead-letter destination
// is the same connector.
func (o *outRun) settleAsync(env *Envelope, err error) {
	src := env.Ack
	if err == nil {
		src.Done()
		return
	}
	o.stats.Errors.Add(1)
	if src != nil && !IsPermanent(err) {
		src.Nack(err)
		return
	}
	o.stats.DeadLettered.Add(1)
	r, stage := o.r, "publish "+o.link.Raw
	if o.dl == nil {
		r.deadLetters.Add(1)
		if n := r.dlLogged.Add(1); n <= 10 || n%1000 == 0 {
			r.log.Warn("publish failed; rejecting source message (no dead-letter destination)", "pipeline", o.pipeline,
				"record", o.record, "link", o.link.Raw, "topic", env.Topic, "error", ErrorText(err), "count", n)
		}
		src.Nack(err)
		return
	}
	e := *env
	r.asyncDL.Add(1)
	go func() {
		defer r.asyncDL.Done()
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.DrainTimeout)
		defer cancel()
		if dlErr := r.deadLetter(ctx, o.dl, &e, o.pipeline, stage, o.record, o.link.Raw, err); dlErr != nil {
			src.Nack(err)
			return
		}
		src.Done()
	}()
}

// recordSpec is the graph's spec of the named record.
func (r *Runner) recordSpec(name string) *RecordSpec {
	for _, s := range r.g.records {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (r *Runner) newOut(l *OutLink, pipeline, rec string) *outRun {
	scheme, caps := "", Caps{}
	if c := r.conns[l.Link.Connector]; c != nil {
		scheme, caps = c.spec.b.Scheme(), CapsOf(c.spec.b)
	}
	dest := ""
	if l.Dest != nil && l.Dest.Static() {
		dest = l.Dest.String()
	}
	return &outRun{r: r, link: l, pipeline: pipeline, record: rec,
		encInfo: &HopInfo{Hop: HopEncode, Pipeline: pipeline, Record: rec, Link: l.Raw, Connector: l.Link.Connector, Scheme: scheme, Caps: caps},
		pubInfo: &HopInfo{Hop: HopPublish, Pipeline: pipeline, Record: rec, Link: l.Raw, Connector: l.Link.Connector, Scheme: scheme, Destination: dest, Caps: caps}}
}

func (o *outRun) snapshot() LinkSnapshot {
	return LinkSnapshot{Direction: Outbound, Link: o.link.Raw, Messages: o.stats.Messages.Load(),
		Errors: o.stats.Errors.Load(), DeadLettered: o.stats.DeadLettered.Load()}
}

// outputError marks a failure in the output step (encode, destination,
// key, publish) so the dead letter names it.
type outputError struct {
	stage string
	err   error
}

func (e *outputError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }

// send encodes env and publishes it. A nil value passes its payload
// through unchanged.
func (o *outRun) send(ctx context.Context, env *Envelope) (err error) {
	defer func() {
		// A panicking encoder, template, key function or connector
		// Publish: dead-letter the record, keep the run going.
		if v := recover(); v != nil {
			err = &outputError{"send", newPanicError(v)}
		}
	}()
	o.scratch = *env
	out := &o.scratch
	if env.Value != nil && !(o.passthrough && env.Payload != nil && o.faithful(env)) {
		span := o.r.hooks.start(ctx, out, o.encInfo)
		var p []byte
		if o.appendEnc != nil {
			p, err = o.appendEnc.AppendEncode(o.buf[:0], env.Value)
			if cap(p) <= 64<<10 {
				o.buf = p // keep the buffer unless one record made it huge
			}
		} else {
			p, err = o.link.Encoder.Encode(env.Value)
		}
		endSpan(span, err)
		if err != nil {
			return &outputError{"encode", err}
		}
		out.Payload = p
	}
	dest, err := o.link.Dest.Render(env)
	if err != nil {
		return &outputError{"destination", err}
	}
	out.Topic = dest
	if o.link.Key != nil {
		k, err := o.link.Key(env)
		if err != nil {
			return &outputError{"key", err}
		}
		out.Key = k
	}
	if err := o.publish(ctx, out, true); err != nil {
		return &outputError{"publish", err}
	}
	return nil
}

func (o *outRun) publish(ctx context.Context, env *Envelope, allowAsync bool) error {
	span := o.r.hooks.start(ctx, env, o.pubInfo)
	var err error
	if o.async != nil && allowAsync {
		// The connector gets its own ack for the record; the source's
		// share it stands for is taken first, since the outcome may
		// arrive before PublishAsync returns.
		src := env.Ack
		src.Add(1)
		s := o.share(env)
		env.Ack = &s.ack
		err = o.async.PublishAsync(ctx, env.Topic, o.link.Options, env)
		env.Ack = src
		if err != nil {
			s.env = Envelope{} // never handed off: its ack is not used
			o.shares.put(s)
			src.Add(-1)
		} else if o.flusher != nil {
			o.held = true
		}
	} else {
		err = o.conn.Publish(ctx, env.Topic, o.link.Options, env)
	}
	endSpan(span, err)
	if err != nil {
		o.stats.Errors.Add(1)
		return err
	}
	o.stats.Messages.Add(1)
	return nil
}

// flush tells o's connector to hand off the records it may hold back
// (Flusher) once the outbound loop driving o has nothing more immediately
// ready: after each batch it received, and so also before it returns. Like
// send, it runs on that loop's goroutine.
func (o *outRun) flush(ctx context.Context) {
	if !o.held {
		return
	}
	o.held = false
	defer func() {
		if v := recover(); v != nil {
			o.r.log.Error("connector Flush panicked", "link", o.link.Raw, "error", newPanicError(v))
		}
	}()
	if err := o.flusher.Flush(ctx); err != nil {
		o.r.log.Debug("connector Flush failed", "link", o.link.Raw, "error", ErrorText(err))
	}
}

// nackError tells settle to reject the source message (at-least-once:
// redelivery) rather than dead-letter it again.
type nackError struct{ err error }

func (e *nackError) Error() string { return e.err.Error() }
func (e *nackError) Unwrap() error { return e.err }

// deliverOut sends env to o; on failure it dead-letters with provenance.
// It returns a *nackError when the record could neither be sent nor
// dead-lettered.
func (r *Runner) deliverOut(ctx context.Context, o *outRun, dl *outRun, env *Envelope) error {
	err := o.send(ctx, env)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return &nackError{err}
	}
	o.stats.DeadLettered.Add(1)
	stage := "to " + o.link.Raw
	var oe *outputError
	if errors.As(err, &oe) {
		stage = oe.stage + " " + o.link.Raw
		err = oe.err
	}
	if dl == nil && oe != nil && oe.stage == "publish" {
		// A rejected publish with nowhere to dead-letter it: reject the
		// source message so it is redelivered instead of lost.
		r.deadLetters.Add(1)
		r.log.Warn("publish failed; rejecting source message", "link", o.link.Raw, "error", ErrorText(err))
		return &nackError{err}
	}
	if dlErr := r.deadLetter(ctx, dl, env, o.pipeline, stage, o.record, o.link.Raw, err); dlErr != nil {
		return &nackError{dlErr}
	}
	return nil
}

type publisherRun struct {
	r       *Runner
	rec     *record
	in      buffer.Reader[Envelope]
	out     *outRun
	hold    *inflight
	stopped atomic.Bool
}

func (p *publisherRun) run(ctx context.Context) error {
	batch := make([]Envelope, recvBatchSize)
	for {
		n, err := p.in.RecvBatch(ctx, batch)
		if err != nil {
			var lag *buffer.LagError
			switch {
			case errors.As(err, &lag):
				p.r.log.Warn("publisher lagged", "record", p.rec.name, "link", p.out.link.Raw, "missed", lag.Missed)
				continue
			case errors.Is(err, buffer.ErrClosed):
				return nil
			}
			return err
		}
		p.hold.hold(0, batch[:n])
		for i := 0; i < n; i++ {
			env := &batch[i]
			err := p.r.deliverOut(ctx, p.out, p.r.graphDL, env)
			var ne *nackError
			if errors.As(err, &ne) {
				env.Ack.Nack(ne.err)
			} else {
				env.Ack.Done()
			}
		}
		p.out.flush(ctx)
		p.hold.release(0)
	}
}
