package knx

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/connectors/knx/dpt"
	"github.com/aimdb-dev/aimdb-flow/connectors/knx/knxnet"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Headers set on inbound envelopes.
const (
	// HeaderGroup is the telegram's group address, in the link's style.
	HeaderGroup = "knx_group"
	// HeaderSource is the sender's individual address (1.1.5).
	HeaderSource = "knx_source"
	// HeaderService is "write" or "response".
	HeaderService = "knx_service"
)

// Conn is a built KNX connector. Its tunnel is owned by a
// kit.Supervisor started by Build and stopped by Close; telegrams
// received are handed to a dispatcher goroutine of the running Serve
// through a bounded queue.
type Conn struct {
	cfg Config
	log *slog.Logger
	sup *kit.Supervisor[*session]

	mu      sync.Mutex
	routes  []route             // of the running Serve
	deliver chan<- knxnet.LData // of the running Serve; nil: none

	stats stats
}

// route is one distinct inbound address.
type route struct {
	filter string
	pat    knxnet.Pattern
	t      dpt.Type
	typed  bool
}

// Ready implements pipeline.Readiness: ready while the tunnel is up.
func (c *Conn) Ready() error { return c.sup.Ready() }

// Serve implements pipeline.Source: it dispatches every group telegram
// the tunnel receives to the links whose pattern matches, until ctx ends.
// The tunnel itself belongs to the connector (made by Build, closed by
// Close), so records still on their way out after the sources stopped
// are published on it.
func (c *Conn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	var routes []route
	seen := map[string]int{}
	for _, s := range subs {
		in := kit.LinkOptions(s.Options, In{})
		if i, ok := seen[s.Filter]; ok {
			if routes[i].t.ID != idOf(in.DPT) {
				c.log.Warn("knx: links of one address with different DPTs; the first one decodes", "address", s.Filter, "dpt", routes[i].t.ID, "ignored", in.DPT)
			}
			continue
		}
		p, err := knxnet.ParsePattern(s.Filter)
		if err != nil {
			return fmt.Errorf("knx: inbound link %q: %w", s.Filter, err)
		}
		t, typed := codecFor(in.DPT)
		seen[s.Filter] = len(routes)
		routes = append(routes, route{filter: s.Filter, pat: p, t: t, typed: typed})
	}
	ch := make(chan knxnet.LData, c.cfg.Inbound)
	c.mu.Lock()
	c.routes, c.deliver = routes, ch
	c.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.dispatchLoop(ctx, routes, ch, d)
	}()

	if c.cfg.ReadOnStart {
		// A tunnel that came up before Serve registered the links has not
		// read them (a tunnel made later reads them itself).
		if sess, err := c.sup.Session(ctx); err == nil {
			sess.readRoutes(ctx, routes)
		}
	}
	<-ctx.Done()
	c.mu.Lock()
	c.routes, c.deliver = nil, nil
	c.mu.Unlock()
	close(ch) // offer sends only while deliver is set, under c.mu
	wg.Wait()
	return nil
}

func idOf(id string) string {
	t, _ := codecFor(id)
	return t.ID
}

// offer hands a received telegram to the running Serve's dispatcher,
// dropping it (counted) when the queue is full.
func (c *Conn) offer(l knxnet.LData) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deliver == nil {
		return
	}
	select {
	case c.deliver <- l:
	default:
		if n := c.stats.overflow.Add(1); n&(n-1) == 0 {
			c.log.Warn("knx: inbound queue full, telegram dropped", "dropped", n, "queue", c.cfg.Inbound)
		}
	}
}

func (c *Conn) inboundRoutes() []route {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.routes
}

func (c *Conn) dispatchLoop(ctx context.Context, routes []route, ch <-chan knxnet.LData, d pipeline.Dispatcher) {
	for l := range ch {
		if ctx.Err() != nil {
			continue // drain
		}
		now := time.Now()
		for _, rt := range routes {
			if !rt.pat.Match(l.Dest) {
				continue
			}
			payload, bad := inboundPayload(&l, rt.pat.Style(), rt.t, rt.typed)
			env := pipeline.Envelope{
				Topic: rt.filter, Payload: payload, Time: now, Partition: -1,
				Headers: pipeline.Headers{
					{Key: HeaderGroup, Value: l.Dest.Format(rt.pat.Style())},
					{Key: HeaderSource, Value: l.Source.String()},
					{Key: HeaderService, Value: l.APCI.String()},
				},
			}
			if bad != nil {
				c.stats.malformed.Add(1)
				rj, ok := d.(pipeline.Rejecter)
				if !ok {
					c.log.Warn("knx: group value does not decode; dropped", "address", rt.filter, "err", bad)
					continue
				}
				c.log.Debug("knx: group value does not decode; dead-lettered", "address", rt.filter, "err", bad)
				if err := rj.Reject(ctx, &env, bad); err != nil {
					break
				}
				continue
			}
			c.stats.dispatched.Add(1)
			if err := d.Dispatch(ctx, &env); err != nil {
				break
			}
		}
	}
}

// Publish implements pipeline.Connector: it sends the record as a
// GroupValueWrite (or Response) to dest and returns when the gateway
// confirmed it. A record that does not fit the link's DPT, or a
// destination that is not a group address, is a pipeline.Permanent
// error; while the tunnel is down Publish fails at once with the reason.
func (c *Conn) Publish(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("knx: publish to %s: %w", dest, err)
	}
	o := kit.LinkOptions(opts, Out{})
	ga, _, err := knxnet.ParseGroupAddress(dest)
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("knx: publish: %w", err))
	}
	t, typed := codecFor(o.DPT)
	data, short, err := outboundValue(env.Payload, t, typed)
	if err != nil {
		c.stats.refused.Add(1)
		return pipeline.Permanent(fmt.Errorf("knx: publish to %s: %w", dest, err))
	}
	f := knxnet.LData{Dest: ga, Group: true, APCI: knxnet.GroupValueWrite, Short: short, Data: data}
	if o.Response {
		f.APCI = knxnet.GroupValueResponse
	}
	if _, err := f.Encode(nil); err != nil {
		c.stats.refused.Add(1)
		return pipeline.Permanent(fmt.Errorf("knx: publish to %s: %w", dest, err))
	}
	s, err := c.sup.Session(ctx)
	if err != nil {
		return fmt.Errorf("knx: publish to %s: %w", dest, err)
	}
	if err := s.send(ctx, f); err != nil {
		c.stats.failed.Add(1)
		return fmt.Errorf("knx: publish to %s: %w", dest, err)
	}
	c.stats.sent.Add(1)
	return nil
}

// Close implements pipeline.Connector: it disconnects the tunnel and
// stops every goroutine, within ctx.
func (c *Conn) Close(ctx context.Context) error { return c.sup.Close(ctx) }

// Stats is a snapshot of the connector's counters.
type Stats struct {
	// Received counts group telegrams received; Dispatched the envelopes
	// handed to the runner (one per matching link).
	Received, Dispatched uint64
	// Overflow counts telegrams dropped because the inbound queue was
	// full; Malformed group values that did not decode as their DPT
	// (dead-lettered).
	Overflow, Malformed uint64
	// Sent counts confirmed publishes, Failed publishes the tunnel could
	// not deliver, Refused records that did not fit their DPT.
	Sent, Failed, Refused uint64
	// Rejected counts datagrams and frames dropped, by reason (truncated,
	// wrong length, unknown service type, ...).
	Rejected map[string]uint64
	// Sessions counts tunnels established.
	Sessions uint64
}

// Stats returns the connector's counters.
func (c *Conn) Stats() Stats { return c.stats.snapshot() }

type stats struct {
	received, dispatched, overflow, malformed atomic.Uint64
	sent, failed, refused, sessions           atomic.Uint64

	mu       sync.Mutex
	rejected map[string]uint64
}

func (s *stats) init() { s.rejected = map[string]uint64{} }

func (s *stats) reject(reason knxnet.Reason) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reason == "" {
		reason = "other"
	}
	s.rejected[string(reason)]++
	return s.rejected[string(reason)]
}

func (s *stats) snapshot() Stats {
	s.mu.Lock()
	rej := make(map[string]uint64, len(s.rejected))
	for k, v := range s.rejected {
		rej[k] = v
	}
	s.mu.Unlock()
	return Stats{
		Received: s.received.Load(), Dispatched: s.dispatched.Load(),
		Overflow: s.overflow.Load(), Malformed: s.malformed.Load(),
		Sent: s.sent.Load(), Failed: s.failed.Load(), Refused: s.refused.Load(),
		Rejected: rej, Sessions: s.sessions.Load(),
	}
}
