package conntest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// harness is one subtest's state: the peer, the parsed link options and
// the connector instances it built.
type harness struct {
	t       *testing.T
	f       Features
	p       Peer
	log     *slog.Logger
	sub     pipeline.Subscription
	dest    string
	outOpts any
	seq     int         // message numbers, unique within the subtest
	recs    []*recorder // dispatchers handed to Serve
}

func newHarness(t *testing.T, f Features, p Peer) *harness {
	t.Helper()
	if p.Builder == nil {
		t.Fatal("conntest: Peer.Builder is nil")
	}
	h := &harness{t: t, f: f, p: p, log: testLogger(t), dest: p.Dest}
	if h.dest == "" {
		h.dest = p.Topic
	}
	if f.NoServe == "" && p.Topic == "" {
		t.Fatal("conntest: Peer.Topic is empty")
	}
	lp, parses := p.Builder.(pipeline.LinkOptionParser)
	if !parses && (len(p.InParams) > 0 || len(p.OutParams) > 0) {
		t.Fatalf("conntest: Peer has link params but %T does not implement pipeline.LinkOptionParser", p.Builder)
	}
	h.sub = pipeline.Subscription{Filter: p.Topic, Record: "conntest.in"}
	if parses && f.NoServe == "" {
		o, err := lp.ParseLinkOptions(pipeline.Inbound, p.Topic, p.InParams)
		if err != nil {
			t.Fatalf("conntest: inbound link %q %v: %v", p.Topic, p.InParams, err)
		}
		h.sub.Options = o
	}
	if parses && f.NoPublish == "" {
		o, err := lp.ParseLinkOptions(pipeline.Outbound, h.dest, p.OutParams)
		if err != nil {
			t.Fatalf("conntest: outbound link %q %v: %v", h.dest, p.OutParams, err)
		}
		h.outOpts = o
	}
	return h
}

// testLogger logs warnings and errors through t.Log until the subtest's
// cleanups have run (logging after that would panic).
func testLogger(t *testing.T) *slog.Logger {
	w := &tlogWriter{t: t}
	t.Cleanup(w.stop) // registered first: runs last
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tlogWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *tlogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *tlogWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// message returns the next test message: a JSON payload (valid for
// connectors that check JSON, free of newlines for line-oriented ones)
// numbered seq, with key "k<seq%keys>" and two headers.
func (h *harness) message(keys int) (Message, int) {
	h.seq++
	n := h.seq
	m := Message{Payload: fmt.Appendf(nil, `{"seq":%d,"text":"h\u00e9llo \"conntest\""}`, n)}
	if h.f.NoKey == "" {
		m.Key = []byte("k" + strconv.Itoa(n%max(keys, 1)))
	}
	if h.f.NoHeaders == "" {
		m.Headers = pipeline.Headers{{Key: "x-conntest-seq", Value: strconv.Itoa(n)}, {Key: "x-conntest-fixed", Value: "v"}}
	}
	return m, n
}

// seqOf extracts the message number from a payload made by message.
func seqOf(payload []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(payload, []byte(`{"seq":`))
	if !ok {
		return 0, false
	}
	i := bytes.IndexByte(rest, ',')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest[:i]))
	return n, err == nil
}

// instance is one built connector.
type instance struct {
	h       *harness
	c       pipeline.Connector
	inbound bool

	mu        sync.Mutex
	cancel    context.CancelFunc
	serveDone chan error
	closed    bool
}

// build builds the connector, with the subscription as its inbound link
// when inbound is set. Cleanup stops and closes it.
func (h *harness) build(inbound bool) *instance {
	h.t.Helper()
	env := pipeline.BuildEnv{
		Name:   h.p.Builder.Scheme(),
		Logger: h.log,
	}
	if inbound {
		env.Inbound = []pipeline.Subscription{h.sub}
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.f.Timeout)
	defer cancel()
	c, err := h.p.Builder.Build(ctx, env)
	if err != nil {
		h.t.Fatalf("Build: %v", err)
	}
	in := &instance{h: h, c: c, inbound: inbound}
	h.t.Cleanup(in.shutdown)
	return in
}

// serve starts Serve in the background with d.
func (in *instance) serve(d pipeline.Dispatcher) {
	in.h.t.Helper()
	src, ok := in.c.(pipeline.Source)
	if !ok {
		in.h.t.Fatalf("%T does not implement pipeline.Source (set Features.NoServe if it has no inbound side)", in.c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	in.mu.Lock()
	in.cancel, in.serveDone = cancel, done
	in.mu.Unlock()
	go func() { done <- src.Serve(ctx, []pipeline.Subscription{in.h.sub}, d) }()
}

// stopServe cancels Serve and checks that it returns nil in time.
func (in *instance) stopServe() {
	in.h.t.Helper()
	in.mu.Lock()
	cancel, done := in.cancel, in.serveDone
	in.cancel, in.serveDone = nil, nil
	in.mu.Unlock()
	if cancel == nil {
		return
	}
	in.h.letGo()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			in.h.t.Errorf("Serve returned %v after its context was cancelled, want nil", err)
		}
	case <-time.After(in.h.f.Timeout):
		in.h.t.Errorf("Serve did not return within %v of its context being cancelled", in.h.f.Timeout)
	}
}

// serveEnded waits for Serve to return by itself (a finite source).
func (in *instance) serveEnded() {
	in.h.t.Helper()
	in.mu.Lock()
	cancel, done := in.cancel, in.serveDone
	in.mu.Unlock()
	if done == nil {
		in.h.t.Fatal("conntest: serveEnded without serve")
	}
	select {
	case err := <-done:
		in.mu.Lock()
		in.cancel, in.serveDone = nil, nil
		in.mu.Unlock()
		cancel()
		if err != nil {
			in.h.t.Errorf("finite Serve returned %v, want nil", err)
		}
	case <-time.After(in.h.f.Timeout):
		in.h.t.Fatalf("finite source: Serve did not return by itself within %v", in.h.f.Timeout)
	}
}

// close closes the connector (once) and checks that Close returns nil by
// its deadline.
func (in *instance) close() {
	in.h.t.Helper()
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return
	}
	in.closed = true
	in.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), in.h.f.Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- in.c.Close(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			in.h.t.Errorf("Close: %v", err)
		}
	case <-time.After(in.h.f.Timeout + in.h.f.Grace):
		in.h.t.Errorf("Close did not return by its context's deadline (%v)", in.h.f.Timeout)
	}
}

// shutdown stops Serve and closes, in the runner's order.
func (in *instance) shutdown() {
	in.stopServe()
	in.close()
}

// waitReady waits until the connector reports ready, when it can tell.
func (in *instance) waitReady() {
	in.h.t.Helper()
	r, ok := in.c.(pipeline.Readiness)
	if !ok {
		return
	}
	var last error
	if !poll(in.h.f.Timeout, func() bool { last = r.Ready(); return last == nil }) {
		in.h.t.Fatalf("connector not ready within %v: %v", in.h.f.Timeout, last)
	}
}

// publish calls Publish with a bounded wait, so that a Publish that never
// returns fails the subtest instead of hanging it.
func (in *instance) publish(ctx context.Context, m Message) error {
	in.h.t.Helper()
	env := pipeline.Envelope{Payload: m.Payload, Key: m.Key, Headers: m.Headers, Time: time.Now(), Partition: -1}
	done := make(chan error, 1)
	go func() { done <- in.c.Publish(ctx, in.h.dest, in.h.outOpts, &env) }()
	select {
	case err := <-done:
		return err
	case <-time.After(in.h.f.Timeout):
		in.h.t.Fatalf("Publish to %q did not return within %v", in.h.dest, in.h.f.Timeout)
	}
	return nil
}

// link is the publishing and serving side of one subtest: one instance in
// live mode, a publisher and (after deliver) a subscriber in stored mode.
type link struct {
	h   *harness
	rec *recorder
	pub *instance // nil without an outbound side
	sub *instance // nil until deliver in stored mode
}

// open builds the link and, when live, starts serving into rec and waits
// until the connector is ready.
func (h *harness) open(rec *recorder) *link {
	h.t.Helper()
	l := &link{h: h, rec: rec}
	switch {
	case h.f.NoPublish != "":
		l.sub = h.build(true)
		l.sub.serve(rec)
	case h.f.Stored || h.f.NoServe != "":
		l.pub = h.build(false)
		l.pub.waitReady()
	default:
		in := h.build(true)
		if _, ok := in.c.(pipeline.Readiness); !ok {
			h.t.Fatalf("%T serves a live link but does not implement pipeline.Readiness: the suite cannot tell when it is subscribed (set Features.Stored if its inbound side reads what was published before)", in.c)
		}
		in.serve(rec)
		in.waitReady()
		l.pub, l.sub = in, in
	}
	return l
}

// deliver makes published messages reach Serve: in stored mode it closes
// the publisher and serves from a new instance; live, it does nothing.
func (l *link) deliver() {
	l.h.t.Helper()
	if l.sub != nil || l.h.f.NoServe != "" {
		return
	}
	l.pub.close()
	l.sub = l.h.build(true)
	l.sub.serve(l.rec)
}

// stop stops serving and closes every instance.
func (l *link) stop() {
	l.h.t.Helper()
	if l.sub != nil {
		l.sub.shutdown()
	}
	if l.pub != nil {
		l.pub.shutdown()
	}
}

// delivery is one message the recorder's Dispatch received.
type delivery struct {
	Message
	Topic string
	Ack   *pipeline.Ack
	held  bool // the recorder left the ack share to the test
}

// recorder is the suite's pipeline.Dispatcher: it copies every dispatched
// envelope and, unless holding, releases the ack share at once.
type recorder struct {
	mu      sync.Mutex
	got     []delivery
	changed chan struct{}
	hold    bool          // leave the ack shares to the test
	gate    chan struct{} // when non-nil, Dispatch waits for it to close (a stalled pipeline)
}

func (h *harness) newRecorder() *recorder {
	r := &recorder{changed: make(chan struct{})}
	h.recs = append(h.recs, r)
	return r
}

// letGo unstalls every recorder and nacks every ack share a failed check
// left held, so that Serve can stop without waiting for them.
func (h *harness) letGo() {
	for _, r := range h.recs {
		r.unstall()
		r.setHold(false)
		for _, d := range r.snapshot() {
			for d.held && d.Ack.Pending() > 0 {
				d.Ack.Nack(errors.New("conntest: subtest ended"))
			}
		}
	}
}

// Dispatch implements pipeline.Dispatcher.
func (r *recorder) Dispatch(ctx context.Context, env *pipeline.Envelope) error {
	r.mu.Lock()
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			// As the runner does: the share is released failed.
			env.Ack.Nack(ctx.Err())
			return ctx.Err()
		}
	}
	d := delivery{Topic: env.Topic, Ack: env.Ack, Message: Message{
		Payload: bytes.Clone(env.Payload),
		Key:     bytes.Clone(env.Key),
		Headers: slices.Clone(env.Headers),
	}}
	r.mu.Lock()
	hold := r.hold
	d.held = hold
	r.got = append(r.got, d)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	if !hold {
		env.Ack.Done()
	}
	return nil
}

// stall makes Dispatch block (honouring its context) until unstall.
func (r *recorder) stall() {
	r.mu.Lock()
	if r.gate == nil {
		r.gate = make(chan struct{})
	}
	r.mu.Unlock()
}

func (r *recorder) unstall() {
	r.mu.Lock()
	if r.gate != nil {
		close(r.gate)
		r.gate = nil
	}
	r.mu.Unlock()
}

func (r *recorder) setHold(b bool) {
	r.mu.Lock()
	r.hold = b
	r.mu.Unlock()
}

func (r *recorder) snapshot() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitFor waits until cond holds for the deliveries so far, or timeout;
// it returns the deliveries and whether cond held.
func (r *recorder) waitFor(timeout time.Duration, cond func([]delivery) bool) ([]delivery, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got, changed := r.got, r.changed
		r.mu.Unlock()
		if cond(got) {
			return slices.Clone(got), true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return slices.Clone(got), false
		}
	}
}

// waitSeq waits for a delivery of message number n and returns it.
func (r *recorder) waitSeq(t *testing.T, timeout time.Duration, n int) delivery {
	t.Helper()
	var found delivery
	_, ok := r.waitFor(timeout, func(ds []delivery) bool {
		for _, d := range ds {
			if s, ok := seqOf(d.Payload); ok && s == n {
				found = d
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("message %d was not dispatched within %v", n, timeout)
	}
	return found
}

// poll checks cond until it holds or timeout passes.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}
