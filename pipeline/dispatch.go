package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file: the inbound side, the Dispatcher a source hands messages
// to (route, size check, decode, dead letters, record write).

type dispatcher struct {
	r    *Runner
	c    *connRun
	info *HopInfo
}

func (d *dispatcher) Dispatch(ctx context.Context, env *Envelope) error {
	r := d.r
	span := r.hooks.start(ctx, env, d.info)
	var arr [4]*route
	routes := d.c.router.Lookup(arr[:0], env.Topic)
	if len(routes) == 0 {
		r.unrouted.Add(1)
		endSpan(span, nil)
		env.Ack.Done()
		return nil
	}
	if env.Time.IsZero() {
		env.Time = time.Now()
	}
	if max := r.opts.MaxPayload; max > 0 && len(env.Payload) > max {
		cause := fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(env.Payload), max)
		d.rejectRoutes(ctx, routes, env, cause)
		endSpan(span, cause)
		return nil
	}
	// Each route decodes into env.Value in turn and the record copies the
	// envelope into its buffer, so one envelope serves every route with no
	// per-route copy (and no allocation).
	var werr error
	for _, rt := range routes {
		rt.stats.Messages.Add(1)
		if ok, dlErr := d.decodeInto(ctx, rt, env); !ok {
			if dlErr != nil {
				werr = errors.Join(werr, dlErr)
			}
			continue
		}
		if err := rt.rec.write(ctx, env); err != nil {
			werr = errors.Join(werr, err)
		}
	}
	env.Value = nil
	endSpan(span, werr)
	env.Ack.Finish(werr)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// Reject implements Rejecter: env is dead-lettered (stage "receive",
// with reason) for every record its topic routes to, and its ack share
// consumed, as Dispatch does with a payload that does not decode.
func (d *dispatcher) Reject(ctx context.Context, env *Envelope, reason error) error {
	if reason == nil {
		reason = errors.New("rejected by the source")
	}
	r := d.r
	span := r.hooks.start(ctx, env, d.info)
	var arr [4]*route
	routes := d.c.router.Lookup(arr[:0], env.Topic)
	if len(routes) == 0 {
		r.unrouted.Add(1)
		endSpan(span, nil)
		env.Ack.Done()
		return nil
	}
	if env.Time.IsZero() {
		env.Time = time.Now()
	}
	d.rejectRoutes(ctx, routes, env, reason)
	endSpan(span, reason)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// rejectRoutes dead-letters env for each route (stage "receive") and
// finishes its ack share with the dead letters' outcome.
func (d *dispatcher) rejectRoutes(ctx context.Context, routes []*route, env *Envelope, cause error) {
	var werr error
	for _, rt := range routes {
		rt.stats.Messages.Add(1)
		rt.stats.Errors.Add(1)
		rt.stats.DeadLettered.Add(1)
		if dlErr := d.r.deadLetter(ctx, d.r.graphDL, env, "", "receive", rt.rec.name, rt.link.Raw, cause); dlErr != nil {
			werr = errors.Join(werr, dlErr)
		}
	}
	env.Ack.Finish(werr)
}

// decodeInto decodes env's payload with rt's link decoder into env.Value
// (a decode hop, with its span; a PayloadOnly link leaves the value nil).
// A payload that does not decode is counted and dead-lettered with its
// provenance: ok is false and dlErr is the dead letter's outcome.
func (d *dispatcher) decodeInto(ctx context.Context, rt *route, env *Envelope) (ok bool, dlErr error) {
	r := d.r
	var v any
	if rt.link.Decoder != PayloadOnly {
		dspan := r.hooks.start(ctx, env, rt.decode)
		var err error
		v, err = decode(rt.link.Decoder, env.Payload)
		endSpan(dspan, err)
		if err != nil {
			rt.stats.Errors.Add(1)
			rt.stats.DeadLettered.Add(1)
			env.Value = nil
			return false, r.deadLetter(ctx, r.graphDL, env, "", "decode", rt.rec.name, rt.link.Raw, err)
		}
	}
	env.Value = v
	return true, nil
}

// DispatchBatch implements BatchDispatcher. The fast path covers the
// common case (one route for the batch's topic, payloads within
// MaxPayload); anything else is dispatched one by one. Each message gets
// its receive and decode hops (and their spans) as with Dispatch.
func (d *dispatcher) DispatchBatch(ctx context.Context, envs []Envelope) error {
	r := d.r
	simple := len(envs) > 1
	topic := ""
	if simple {
		topic = envs[0].Topic
		for i := range envs {
			if envs[i].Topic != topic || r.opts.MaxPayload > 0 && len(envs[i].Payload) > r.opts.MaxPayload {
				simple = false
				break
			}
		}
	}
	var arr [4]*route
	var routes []*route
	if simple {
		routes = d.c.router.Lookup(arr[:0], topic)
		simple = len(routes) == 1
	}
	if !simple {
		for i := range envs {
			if err := d.Dispatch(ctx, &envs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	rt := routes[0]
	rt.stats.Messages.Add(uint64(len(envs)))
	var spans []Span // receive spans, when a tracer is installed
	if r.hooks != nil && r.hooks.tracer != nil {
		spans = make([]Span, len(envs))
	}
	now := time.Time{}
	// Decode each; a payload that fails is dead-lettered on the spot and
	// dropped from the batch (kept envelopes move to the front).
	j := 0
	for i := range envs {
		env := &envs[i]
		var span Span
		if spans != nil {
			span = r.hooks.start(ctx, env, d.info)
		}
		if env.Time.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			env.Time = now
		}
		if ok, dlErr := d.decodeInto(ctx, rt, env); !ok {
			endSpan(span, dlErr)
			env.Ack.Finish(dlErr)
			continue
		}
		if j != i {
			envs[j] = *env
		}
		if spans != nil {
			spans[j] = span
		}
		j++
	}
	n, werr := rt.rec.writeBatch(ctx, envs[:j])
	for i := 0; i < j; i++ {
		var err error
		if i >= n {
			err = werr
		}
		if spans != nil {
			endSpan(spans[i], err)
		}
		envs[i].Ack.Finish(err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}
