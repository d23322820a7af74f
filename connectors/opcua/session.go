package opcua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// session is one OPC UA session with its subscriptions (kit.Session).
type session struct {
	cl     *opcua.Client
	state  chan opcua.ConnState
	notify chan *opcua.PublishNotificationData
	d      pipeline.Dispatcher
	links  map[uint32]item // by monitored item client handle
	log    *slog.Logger

	mu    sync.Mutex
	ids   map[string]*ua.NodeID // resolved link addresses
	types map[string]ua.TypeID  // data types of written nodes
}

// item is one inbound link's monitored item.
type item struct {
	sub  pipeline.Subscription
	in   In
	node string // the resolved node id
	seen *bool  // a data change arrived in this session
}

// connect opens a session and creates the subscriptions of every inbound
// link (kit.SupervisorConfig.Connect).
func (c *Conn) connect(ctx context.Context) (*session, error) {
	opts, err := c.clientOptions(ctx)
	if err != nil {
		return nil, err
	}
	s := &session{
		state:  make(chan opcua.ConnState, 64),
		notify: make(chan *opcua.PublishNotificationData, 256),
		links:  map[uint32]item{},
		log:    c.log,
		ids:    map[string]*ua.NodeID{},
		types:  map[string]ua.TypeID{},
	}
	cl, err := opcua.NewClient(c.cfg.Endpoint, append(opts, opcua.StateChangedCh(s.state))...)
	if err != nil {
		return nil, err
	}
	if err := cl.Connect(ctx); err != nil {
		return nil, err
	}
	s.cl = cl
	c.mu.Lock()
	subs, d := c.subs, c.d
	c.mu.Unlock()
	s.d = d
	if err := s.subscribe(ctx, subs); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// clientOptions are the gopcua options of c's configuration: security
// from the server's matching endpoint, identity, timeouts.
func (c *Conn) clientOptions(ctx context.Context) ([]opcua.Option, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	eps, err := opcua.GetEndpoints(dctx, c.cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("get endpoints: %w", err)
	}
	policy := ua.SecurityPolicyURINone
	if c.cfg.Policy == PolicyBasic256Sha256 {
		policy = ua.SecurityPolicyURIBasic256Sha256
	}
	ep, err := opcua.SelectEndpoint(eps, policy, ua.MessageSecurityModeFromString(c.cfg.Mode))
	if err != nil {
		return nil, fmt.Errorf("server offers no endpoint with security %s/%s: %w", c.cfg.Policy, c.cfg.Mode, err)
	}
	opts := []opcua.Option{
		opcua.AutoReconnect(false),
		opcua.DialTimeout(c.cfg.DialTimeout),
		opcua.RequestTimeout(c.cfg.RequestTimeout),
		opcua.SessionTimeout(c.cfg.SessionTimeout),
		opcua.ApplicationURI(applicationURI),
		opcua.ApplicationName("aimdb-flow"),
	}
	if c.cfg.Policy != PolicyNone {
		cert, key, err := clientCertificate(c.cfg.CertFile, c.cfg.KeyFile)
		if err != nil {
			return nil, opcuaFinal(err)
		}
		opts = append(opts, opcua.Certificate(cert), opcua.PrivateKey(key))
	}
	tok := ua.UserTokenTypeAnonymous
	if c.cfg.Username != "" {
		tok = ua.UserTokenTypeUserName
		opts = append(opts, opcua.AuthUsername(c.cfg.Username, c.cfg.Password.Value()))
	} else {
		opts = append(opts, opcua.AuthAnonymous())
	}
	return append(opts, opcua.SecurityFromEndpoint(ep, tok)), nil
}

// subscribe creates one subscription with one monitored item per link.
func (s *session) subscribe(ctx context.Context, subs []pipeline.Subscription) error {
	for i, sub := range subs {
		in := optsIn(sub.Options)
		nid, err := s.resolve(ctx, sub.Filter)
		if err != nil {
			return err
		}
		h := uint32(i + 1)
		sb, err := s.cl.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: in.PublishingInterval}, s.notify)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", sub.Filter, err)
		}
		req := opcua.NewMonitoredItemCreateRequestWithDefaults(nid, ua.AttributeIDValue, h)
		req.RequestedParameters.QueueSize = in.QueueSize
		req.RequestedParameters.SamplingInterval = float64(in.SamplingInterval) / float64(time.Millisecond)
		if in.Deadband > 0 {
			typ := uint32(1) // absolute
			if in.DeadbandPercent {
				typ = 2
			}
			req.RequestedParameters.Filter = ua.NewExtensionObject(&ua.DataChangeFilter{
				Trigger: ua.DataChangeTriggerStatusValue, DeadbandType: typ, DeadbandValue: in.Deadband})
		}
		res, err := sb.Monitor(ctx, ua.TimestampsToReturnBoth, req)
		if err != nil {
			return fmt.Errorf("monitor %s: %w", sub.Filter, err)
		}
		if len(res.Results) != 1 {
			return fmt.Errorf("monitor %s: %d results", sub.Filter, len(res.Results))
		}
		if st := res.Results[0].StatusCode; st != ua.StatusOK {
			return fmt.Errorf("monitor %s: %w", sub.Filter, st)
		}
		s.log.Debug("opcua: monitoring", "link", sub.Filter, "node", nid.String(),
			"sampling_ms", res.Results[0].RevisedSamplingInterval, "queue", res.Results[0].RevisedQueueSize,
			"publishing", sb.RevisedPublishingInterval)
		s.links[h] = item{sub: sub, in: in, node: nid.String(), seen: new(bool)}
	}
	return nil
}

// resolve returns the node id of a link address: parsed, or a browse path
// translated from the Objects folder (once per session).
func (s *session) resolve(ctx context.Context, addr string) (*ua.NodeID, error) {
	s.mu.Lock()
	nid := s.ids[addr]
	s.mu.Unlock()
	if nid != nil {
		return nid, nil
	}
	if len(addr) > 0 && addr[0] == '/' {
		path, err := parseBrowsePath(addr)
		if err != nil {
			return nil, err
		}
		nid, err = s.cl.Node(ua.NewNumericNodeID(0, id.ObjectsFolder)).TranslateBrowsePathsToNodeIDs(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("browse path %s: %w", addr, err)
		}
	} else {
		var err error
		if nid, err = ua.ParseNodeID(addr); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	s.ids[addr] = nid
	s.mu.Unlock()
	return nid, nil
}

// Serve dispatches data changes until the connection ends or ctx ends.
func (s *session) Serve(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case st := <-s.state:
			if st == opcua.Disconnected || st == opcua.Closed {
				return fmt.Errorf("connection lost (%v)", st)
			}
		case n := <-s.notify:
			if n.Error != nil {
				if s.cl.State() != opcua.Connected {
					return fmt.Errorf("subscription: %w", n.Error)
				}
				s.log.Warn("opcua: subscription error", "err", n.Error)
				continue
			}
			dc, ok := n.Value.(*ua.DataChangeNotification)
			if !ok {
				continue
			}
			for _, mi := range dc.MonitoredItems {
				if err := s.dispatch(ctx, mi); err != nil {
					return nil // ctx ended
				}
			}
		}
	}
}

// dispatch hands one data change to the runner, or rejects it with the
// reason.
func (s *session) dispatch(ctx context.Context, mi *ua.MonitoredItemNotification) error {
	it, ok := s.links[mi.ClientHandle]
	if !ok || mi.Value == nil || s.d == nil {
		return nil
	}
	dv := mi.Value
	if first := !*it.seen; first {
		*it.seen = true
		if it.in.SkipInitial {
			return nil
		}
	}
	env := &pipeline.Envelope{Topic: it.sub.Filter, Time: dv.SourceTimestamp}
	if env.Time.IsZero() {
		env.Time = time.Now()
	}
	var reason error
	switch {
	case isBad(dv.Status) && !it.in.DispatchBad:
		reason = fmt.Errorf("opcua: %s: data change with status %s (0x%08X)", it.node, statusName(dv.Status), uint32(dv.Status))
	case int64(valueSize(dv.Value)) > it.in.MaxValue:
		reason = fmt.Errorf("opcua: %s: value of %d bytes exceeds max_value %d", it.node, valueSize(dv.Value), it.in.MaxValue)
	}
	if reason == nil {
		p, err := encodeChange(it.node, dv, it.in)
		if err != nil {
			reason = fmt.Errorf("opcua: %s: %w", it.node, err)
		} else {
			env.Payload = p
			return s.d.Dispatch(ctx, env)
		}
	}
	env.Payload = []byte(reason.Error())
	if r, ok := s.d.(pipeline.Rejecter); ok {
		return r.Reject(ctx, env, reason)
	}
	s.log.Warn("opcua: data change refused", "link", it.sub.Filter, "reason", reason)
	return nil
}

// Close closes the session and the secure channel.
func (s *session) Close() error {
	if s.cl == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.cl.Close(ctx)
}

// broken reports whether err shows the connection is unusable (not a
// refusal of one value).
func broken(err error) bool {
	if pipeline.IsPermanent(err) {
		return false
	}
	var st ua.StatusCode
	if errors.As(err, &st) {
		switch st {
		case ua.StatusBadSessionIDInvalid, ua.StatusBadSessionClosed, ua.StatusBadSecureChannelClosed,
			ua.StatusBadConnectionClosed, ua.StatusBadCommunicationError, ua.StatusBadServerNotConnected:
			return true
		}
		return false
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}
