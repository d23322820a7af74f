package conntest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// subtest is one property of the contract.
type subtest struct {
	name string
	// skip returns the reason the Features give for not checking it.
	skip func(f Features) string
	run  func(h *harness)
}

var subtests = []subtest{
	{"RoundTrip", needs(pubServe), roundTrip},
	{"AckAfterAllShares", needs(pubServe, ack), ackAfterAllShares},
	{"NackRedelivers", needs(pubServe, ack, redelivery), nackRedelivers},
	{"PublishHonoursContext", needs(pubServe, blocking), publishHonoursContext},
	{"ConcurrentPublish", needs(pubServe), concurrentPublish},
	{"AsyncPublishAcksOnce", needs(pubServe), asyncPublishAcksOnce},
	{"CloseFlushes", needs(pubServe), closeFlushes},
	{"CloseLeaksNoGoroutine", needs(), closeLeaksNoGoroutine},
	{"ReadinessDuringOutage", needs(outage), readinessDuringOutage},
	{"FiniteSourceEnds", needs(finite), finiteSourceEnds},
	{"BadLinkSettings", needs(linkSettings), badLinkSettings},
}

// Feature predicates for needs: each returns why a feature is off, naming
// the Features field that says so.
func pubServe(f Features) string {
	return firstReason(field("NoPublish", f.NoPublish), field("NoServe", f.NoServe))
}
func ack(f Features) string        { return field("NoAck", f.NoAck) }
func redelivery(f Features) string { return field("NoRedelivery", f.NoRedelivery) }
func blocking(f Features) string   { return field("NoBlocking", f.NoBlocking) }
func outage(f Features) string {
	return firstReason(field("NoOutage", f.NoOutage), field("NoServe", f.NoServe))
}
func finite(f Features) string {
	return firstReason(field("NotFinite", f.NotFinite), field("NoServe", f.NoServe))
}
func linkSettings(f Features) string { return field("NoLinkSettings", f.NoLinkSettings) }

func field(name, reason string) string {
	if reason == "" {
		return ""
	}
	return "Features." + name + ": " + reason
}

func firstReason(reasons ...string) string {
	for _, r := range reasons {
		if r != "" {
			return r
		}
	}
	return ""
}

func needs(preds ...func(Features) string) func(Features) string {
	return func(f Features) string {
		for _, p := range preds {
			if r := p(f); r != "" {
				return r
			}
		}
		return ""
	}
}

// ---- checks on what was dispatched ----

// want is what the suite published, by message number.
type want map[int]Message

func (w want) seqs() []int {
	s := make([]int, 0, len(w))
	for n := range w {
		s = append(s, n)
	}
	slices.Sort(s)
	return s
}

// waitAll waits until every message of w was dispatched at least once and
// returns the deliveries so far.
func (h *harness) waitAll(rec *recorder, w want) []delivery {
	h.t.Helper()
	ds, ok := rec.waitFor(h.f.Timeout, func(ds []delivery) bool { return len(missing(ds, w)) == 0 })
	if !ok {
		miss := missing(ds, w)
		h.t.Fatalf("%d of %d messages were not dispatched within %v (missing %v)%s", len(miss), len(w), h.f.Timeout, firstFew(miss), strangers(ds, w))
	}
	return ds
}

// strangers describes deliveries that are none of the published messages
// (a corrupted payload), for failure messages.
func strangers(ds []delivery, w want) string {
	var n int
	var first []byte
	for _, d := range ds {
		if s, ok := seqOf(d.Payload); !ok || w[s].Payload == nil {
			if n++; n == 1 {
				first = d.Payload
			}
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d dispatched messages are not ones the suite published, e.g. %q", n, first)
}

func missing(ds []delivery, w want) []int {
	seen := make(map[int]bool, len(ds))
	for _, d := range ds {
		if n, ok := seqOf(d.Payload); ok {
			seen[n] = true
		}
	}
	var out []int
	for n := range w {
		if !seen[n] {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func firstFew(s []int) string {
	if len(s) > 10 {
		return fmt.Sprint(s[:10]) + "..."
	}
	return fmt.Sprint(s)
}

// check compares deliveries with what was published: every delivery is a
// published message, on the link's topic, with its payload, key and
// headers, dispatched once. group names the order group of a message
// (its key, or its publisher) for the order check.
func (h *harness) check(ds []delivery, w want, group func(n int) string) {
	h.t.Helper()
	errs := 0
	report := func(format string, args ...any) {
		h.t.Helper()
		if errs++; errs <= 10 {
			h.t.Errorf(format, args...)
		}
	}
	count := map[int]int{}
	var order []int
	for _, d := range ds {
		n, ok := seqOf(d.Payload)
		m, published := w[n]
		if !ok || !published {
			report("dispatched a message the suite did not publish: %q", d.Payload)
			continue
		}
		if count[n]++; count[n] == 2 {
			report("message %d was dispatched more than once", n)
		}
		order = append(order, n)
		if d.Topic != h.p.Topic {
			report("message %d: env.Topic = %q, want %q", n, d.Topic, h.p.Topic)
		}
		if !bytes.Equal(d.Payload, m.Payload) {
			report("message %d: payload %q, want %q", n, d.Payload, m.Payload)
		}
		if h.f.NoKey == "" && !bytes.Equal(d.Key, m.Key) {
			report("message %d: key %q, want %q", n, d.Key, m.Key)
		}
		if h.f.NoHeaders == "" {
			for _, hd := range m.Headers {
				if v, ok := d.Headers.Get(hd.Key); !ok || v != hd.Value {
					report("message %d: header %q = %q (present %v), want %q; got headers %v", n, hd.Key, v, ok, hd.Value, d.Headers)
				}
			}
		}
	}
	if h.f.Order == Unordered {
		return
	}
	last := map[string]int{}
	for _, n := range order {
		g := group(n)
		if prev, ok := last[g]; ok && n < prev {
			report("order %s broken: message %d dispatched after %d (group %q)", h.f.Order, n, prev, g)
		}
		last[g] = n
	}
}

// keyGroup is the order group of the round trip: the whole topic, or the
// message's key.
func (h *harness) keyGroup(w want) func(int) string {
	return func(n int) string {
		if h.f.Order == OrderPerKey {
			return string(w[n].Key)
		}
		return ""
	}
}

// ---- acknowledgement observation ----

// ackWatch observes whether the source acknowledged a message to its
// peer: through Peer.Acked, or through the return of a Publish that waits
// for the acknowledgement.
type ackWatch struct {
	h       *harness
	pubDone chan error // the Publish in flight (nil with Peer.Acked)
	base    int        // Acked before the message
}

// publishWatched publishes m and returns a watch on its acknowledgement.
func (h *harness) publishWatched(l *link, m Message) *ackWatch {
	h.t.Helper()
	w := &ackWatch{h: h}
	if h.p.Acked != nil {
		w.base = w.acked()
		if err := l.pub.publish(h.ctx(), m); err != nil {
			h.t.Fatalf("Publish: %v", err)
		}
		l.deliver()
		return w
	}
	if h.f.Stored {
		h.t.Fatal("conntest: the acknowledgement of a stored source can only be observed through Peer.Acked")
	}
	w.pubDone = make(chan error, 1)
	env := pipeline.Envelope{Payload: m.Payload, Key: m.Key, Headers: m.Headers, Time: time.Now(), Partition: -1}
	ctx := h.ctx()
	go func() { w.pubDone <- l.pub.c.Publish(ctx, h.dest, h.outOpts, &env) }()
	return w
}

func (w *ackWatch) acked() int {
	w.h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), w.h.f.Timeout)
	defer cancel()
	n, err := w.h.p.Acked(ctx)
	if err != nil {
		w.h.t.Fatalf("Peer.Acked: %v", err)
	}
	return n
}

// notYet checks, for Features.Quiet, that the message is not acknowledged.
func (w *ackWatch) notYet(why string) {
	w.h.t.Helper()
	quiet := time.NewTimer(w.h.f.Quiet)
	defer quiet.Stop()
	if w.pubDone != nil {
		select {
		case err := <-w.pubDone:
			w.pubDone = nil
			w.h.t.Fatalf("Publish returned (%v) while %s: the source acknowledged too early (if Publish does not wait for the inbound acknowledgement, give the Peer an Acked hook)", err, why)
		case <-quiet.C:
		}
		return
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if n := w.acked(); n > w.base {
			w.h.t.Fatalf("the peer saw the message acknowledged while %s", why)
		}
		select {
		case <-quiet.C:
			return
		case <-tick.C:
		}
	}
}

// now checks, without waiting, that the message is not acknowledged yet.
func (w *ackWatch) notNow(why string) {
	w.h.t.Helper()
	if w.pubDone != nil {
		select {
		case err := <-w.pubDone:
			w.pubDone = nil
			w.h.t.Fatalf("Publish returned (%v) while %s", err, why)
		default:
		}
		return
	}
	if n := w.acked(); n > w.base {
		w.h.t.Fatalf("the peer saw the message acknowledged while %s", why)
	}
}

// done waits until the message is acknowledged.
func (w *ackWatch) done() {
	w.h.t.Helper()
	if w.pubDone != nil {
		select {
		case err := <-w.pubDone:
			if err != nil {
				w.h.t.Fatalf("Publish returned %v after every share was released, want nil", err)
			}
		case <-time.After(w.h.f.Timeout):
			w.h.t.Fatalf("Publish did not return within %v of the last ack share being released", w.h.f.Timeout)
		}
		return
	}
	if !poll(w.h.f.Timeout, func() bool { return w.acked() > w.base }) {
		w.h.t.Fatalf("the peer did not see the message acknowledged within %v of the last share being released", w.h.f.Timeout)
	}
}

// ctx is a context bounded by the suite's timeout, cancelled at cleanup.
func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), h.f.Timeout)
	h.t.Cleanup(cancel)
	return ctx
}

// ---- subtests ----

func roundTrip(h *harness) {
	rec := h.newRecorder()
	l := h.open(rec)
	w := want{}
	for range h.f.Records {
		m, n := h.message(3)
		if err := l.pub.publish(h.ctx(), m); err != nil {
			h.t.Fatalf("Publish message %d: %v", n, err)
		}
		w[n] = m
	}
	l.deliver()
	h.waitAll(rec, w)
	l.stop()
	// After Serve returned, the snapshot holds any late duplicate too.
	h.check(rec.snapshot(), w, h.keyGroup(w))
}

func ackAfterAllShares(h *harness) {
	rec := h.newRecorder()
	rec.setHold(true)
	l := h.open(rec)
	m, n := h.message(1)
	aw := h.publishWatched(l, m)
	d := rec.waitSeq(h.t, h.f.Timeout, n)
	if d.Ack == nil {
		h.t.Fatal("the source dispatched the message without an ack handle (env.Ack is nil); if its protocol has no acknowledgement, set Features.NoAck with the reason")
	}
	// Three sinks took the message: the dispatcher's share plus two.
	d.Ack.Add(2)
	d.Ack.Done()
	aw.notYet("two of three ack shares were still held")
	d.Ack.Done()
	aw.notYet("one of three ack shares was still held")
	d.Ack.Done()
	aw.done()
	l.stop()
}

func nackRedelivers(h *harness) {
	rec := h.newRecorder()
	rec.setHold(true)
	l := h.open(rec)
	m, n := h.message(1)
	aw := h.publishWatched(l, m)
	first := rec.waitSeq(h.t, h.f.Timeout, n)
	if first.Ack == nil {
		h.t.Fatal("the source dispatched the message without an ack handle (env.Ack is nil)")
	}
	first.Ack.Nack(errors.New("conntest: nack"))
	ds, ok := rec.waitFor(h.f.Timeout, func(ds []delivery) bool { return countSeq(ds, n) >= 2 })
	if !ok {
		h.t.Fatalf("a nacked message was not delivered again within %v (set Features.NoRedelivery if the protocol cannot redeliver)", h.f.Timeout)
	}
	aw.notNow("the message was nacked and its redelivery not yet acknowledged")
	again := ds[1]
	if !bytes.Equal(again.Payload, m.Payload) || (h.f.NoKey == "" && !bytes.Equal(again.Key, m.Key)) {
		h.t.Errorf("redelivered message differs: payload %q key %q, want %q %q", again.Payload, again.Key, m.Payload, m.Key)
	}
	// Release every delivery still held (a redelivery may come twice).
	for _, d := range ds[1:] {
		d.Ack.Done()
	}
	rec.setHold(false)
	for _, d := range rec.snapshot()[len(ds):] {
		d.Ack.Done()
	}
	aw.done()
	l.stop()
}

func countSeq(ds []delivery, n int) int {
	c := 0
	for _, d := range ds {
		if s, ok := seqOf(d.Payload); ok && s == n {
			c++
		}
	}
	return c
}

func publishHonoursContext(h *harness) {
	t := h.t
	rec := h.newRecorder()
	l := h.open(rec)
	var unblock func()
	if h.p.Block != nil {
		unblock = h.p.Block(t)
	} else {
		if h.f.Stored {
			t.Fatal("conntest: a stored connector needs Peer.Block to stall its peer (or Features.NoBlocking)")
		}
		rec.stall()
		unblock = rec.unstall
	}
	var once sync.Once
	release := func() { once.Do(unblock) }
	t.Cleanup(release)

	// publishWithin calls Publish and waits at most d for it.
	publishWithin := func(ctx context.Context, m Message, d time.Duration) (error, bool) {
		env := pipeline.Envelope{Payload: m.Payload, Key: m.Key, Headers: m.Headers, Time: time.Now(), Partition: -1}
		done := make(chan error, 1)
		go func() { done <- l.pub.c.Publish(ctx, h.dest, h.outOpts, &env) }()
		select {
		case err := <-done:
			return err, true
		case <-time.After(d):
			return nil, false
		}
	}
	const stalledHint = " (the peer was stalled, so Publish could not have been confirmed; if Publish does not wait for the inbound side, give the Peer a Block hook, or set Features.NoBlocking)"

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	m, _ := h.message(1)
	start := time.Now()
	err, returned := publishWithin(cancelled, m, h.f.Grace)
	switch {
	case !returned:
		t.Errorf("Publish with a cancelled context did not return within %v", h.f.Grace)
	case !errors.Is(err, context.Canceled):
		t.Errorf("Publish with a cancelled context returned %v after %v, want an error wrapping context.Canceled"+stalledHint, err, time.Since(start).Round(time.Millisecond))
	}

	deadline := max(2*h.f.Quiet, 200*time.Millisecond)
	dctx, dcancel := context.WithTimeout(context.Background(), deadline)
	defer dcancel()
	m, _ = h.message(1)
	start = time.Now()
	err, returned = publishWithin(dctx, m, deadline+h.f.Grace)
	switch {
	case !returned:
		t.Errorf("Publish with a %v deadline did not return within %v of it", deadline, h.f.Grace)
	case !errors.Is(err, context.DeadlineExceeded):
		t.Errorf("Publish with a %v deadline returned %v after %v, want an error wrapping context.DeadlineExceeded"+stalledHint, deadline, err, time.Since(start).Round(time.Millisecond))
	}

	// The connector still works once the peer moves again.
	release()
	m, n := h.message(1)
	if err := l.pub.publish(h.ctx(), m); err != nil {
		t.Fatalf("Publish after the peer moved again: %v", err)
	}
	l.deliver()
	rec.waitSeq(t, h.f.Timeout, n)
	l.stop()
}

func concurrentPublish(h *harness) {
	t := h.t
	rec := h.newRecorder()
	l := h.open(rec)
	P, M := h.f.Publishers, h.f.Records
	w := want{}
	publisher := map[int]int{}
	msgs := make([][]Message, P)
	for g := range P {
		for range M {
			m, n := h.message(1)
			if h.f.NoKey == "" {
				m.Key = []byte("p" + strconv.Itoa(g)) // one key per publisher: per-key order = per-publisher order
			}
			msgs[g] = append(msgs[g], m)
			w[n], publisher[n] = m, g
		}
	}
	ctx := h.ctx()
	errc := make(chan error, P*M)
	var wg sync.WaitGroup
	for g := range P {
		wg.Go(func() {
			for _, m := range msgs[g] {
				env := pipeline.Envelope{Payload: m.Payload, Key: m.Key, Headers: m.Headers, Time: time.Now(), Partition: -1}
				if err := l.pub.c.Publish(ctx, h.dest, h.outOpts, &env); err != nil {
					n, _ := seqOf(m.Payload)
					errc <- fmt.Errorf("publisher %d, message %d: %w", g, n, err)
				}
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(h.f.Timeout):
		t.Fatalf("%d publishers × %d messages did not finish within %v", P, M, h.f.Timeout)
	}
	close(errc)
	nerr := 0
	for err := range errc {
		if nerr++; nerr <= 5 {
			t.Errorf("Publish: %v", err)
		}
	}
	l.deliver()
	h.waitAll(rec, w)
	l.stop()
	h.check(rec.snapshot(), w, func(n int) string { return strconv.Itoa(publisher[n]) })
}

// tracked is one PublishAsync hand-off: the suite holds one share of ack
// (the source's), the connector one.
type tracked struct {
	n     int
	ack   *pipeline.Ack
	calls atomic.Int32
	mu    sync.Mutex
	err   error
}

func newTracked(n int) *tracked {
	tr := &tracked{n: n}
	tr.ack = pipeline.NewAck(func(err error) {
		tr.mu.Lock()
		tr.err = err
		tr.mu.Unlock()
		tr.calls.Add(1)
	})
	tr.ack.Add(1) // the connector's share, taken before the hand-off as the runner does
	return tr
}

// release releases the suite's share and checks the outcome: the callback
// runs exactly once, with nil.
func (tr *tracked) release(h *harness) {
	h.t.Helper()
	if c := tr.calls.Load(); c != 0 {
		h.t.Errorf("message %d: the ack callback ran before the suite released its own share: the connector finished its share more than once", tr.n)
		return
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				h.t.Errorf("message %d: releasing the suite's share panicked (%v): the connector finished its share more than once", tr.n, p)
			}
		}()
		tr.ack.Done()
	}()
	if c := tr.calls.Load(); c != 1 {
		h.t.Errorf("message %d: ack callback ran %d times, want 1", tr.n, c)
	}
	tr.mu.Lock()
	err := tr.err
	tr.mu.Unlock()
	if err != nil {
		h.t.Errorf("message %d: the connector finished its ack share with %v, want success", tr.n, err)
	}
}

// publishAsync hands every message in msgs to ap, reusing one envelope and
// one payload buffer and overwriting them after each hand-off (the
// connector must copy what it keeps).
func (h *harness) publishAsync(ap pipeline.AsyncPublisher, msgs []Message, seqs []int) []*tracked {
	h.t.Helper()
	ctx := h.ctx()
	var trs []*tracked
	var env pipeline.Envelope
	var payload, key []byte
	headers := make(pipeline.Headers, 0, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, m := range msgs {
			tr := newTracked(seqs[i])
			if h.f.KeepsBytes {
				payload, key = nil, nil // fresh bytes: the connector may keep them
			}
			payload = append(payload[:0], m.Payload...)
			key = append(key[:0], m.Key...)
			if m.Key == nil {
				key = nil
			}
			headers = append(headers[:0], m.Headers...)
			env = pipeline.Envelope{Payload: payload, Key: key, Headers: headers, Time: time.Now(), Partition: -1, Ack: tr.ack}
			if err := ap.PublishAsync(ctx, h.dest, h.outOpts, &env); err != nil {
				h.t.Errorf("PublishAsync message %d: %v", seqs[i], err)
				tr.ack.Nack(err) // the hand-off failed: the share is still ours
				continue
			}
			trs = append(trs, tr)
			// The envelope is reused by the caller: scribble over it (and
			// over the bytes, unless the connector may keep them).
			env = pipeline.Envelope{Payload: []byte("XXXX"), Key: []byte("XXXX")}
			if !h.f.KeepsBytes {
				for j := range payload {
					payload[j] = 'X'
				}
				for j := range key {
					key[j] = 'X'
				}
			}
			for j := range headers {
				headers[j] = pipeline.Header{Key: "x-scribbled", Value: "X"}
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(h.f.Timeout):
		h.t.Fatalf("PublishAsync of %d messages did not return within %v", len(msgs), h.f.Timeout)
	}
	return trs
}

func pendingCount(trs []*tracked) int {
	n := 0
	for _, tr := range trs {
		if tr.ack.Pending() > 1 {
			n++
		}
	}
	return n
}

func asyncPublishAcksOnce(h *harness) {
	t := h.t
	rec := h.newRecorder()
	l := h.open(rec)
	ap, ok := l.pub.c.(pipeline.AsyncPublisher)
	if !ok {
		t.Skipf("%T does not implement pipeline.AsyncPublisher", l.pub.c)
	}
	w := want{}
	var msgs []Message
	var seqs []int
	for range h.f.Records {
		m, n := h.message(3)
		msgs, seqs, w[n] = append(msgs, m), append(seqs, n), m
	}
	trs := h.publishAsync(ap, msgs, seqs)
	if !poll(h.f.Timeout, func() bool { return pendingCount(trs) == 0 }) {
		t.Fatalf("%d of %d PublishAsync acks were not finished within %v", pendingCount(trs), len(trs), h.f.Timeout)
	}
	l.deliver()
	h.waitAll(rec, w)
	for _, tr := range trs {
		tr.release(h)
	}
	l.stop()
	h.check(rec.snapshot(), w, h.keyGroup(w))
}

func closeFlushes(h *harness) {
	t := h.t
	rec := h.newRecorder()
	var sub *instance
	if !h.f.Stored {
		sub = h.build(true)
		if _, ok := sub.c.(pipeline.Readiness); !ok {
			t.Fatalf("%T serves a live link but does not implement pipeline.Readiness", sub.c)
		}
		sub.serve(rec)
		sub.waitReady()
	}
	pub := h.build(false)
	pub.waitReady()
	w := want{}
	var msgs []Message
	var seqs []int
	for range h.f.Records {
		m, n := h.message(3)
		msgs, seqs, w[n] = append(msgs, m), append(seqs, n), m
	}
	var trs []*tracked
	if ap, ok := pub.c.(pipeline.AsyncPublisher); ok {
		trs = h.publishAsync(ap, msgs, seqs)
	} else {
		for i, m := range msgs {
			if err := pub.publish(h.ctx(), m); err != nil {
				t.Fatalf("Publish message %d: %v", seqs[i], err)
			}
		}
	}
	pub.close()
	if n := pendingCount(trs); n > 0 {
		t.Errorf("Close returned with %d of %d PublishAsync acks unfinished", n, len(trs))
	}
	if sub == nil {
		sub = h.build(true)
		sub.serve(rec)
	}
	if ds, ok := rec.waitFor(h.f.Timeout, func(ds []delivery) bool { return len(missing(ds, w)) == 0 }); !ok {
		miss := missing(ds, w)
		t.Fatalf("%d of %d messages published before Close never arrived (missing %v): Close did not flush them%s", len(miss), len(w), firstFew(miss), strangers(ds, w))
	}
	for _, tr := range trs {
		tr.release(h)
	}
	sub.shutdown()
	h.check(rec.snapshot(), w, h.keyGroup(w))
}

func closeLeaksNoGoroutine(h *harness) {
	t := h.t
	before := goroutines()
	rec := h.newRecorder()
	n := max(h.f.Records/4, 1)
	switch {
	case h.f.NoPublish != "":
		l := h.open(rec)
		if len(h.p.Expect) > 0 {
			if _, ok := rec.waitFor(h.f.Timeout, func(ds []delivery) bool { return len(ds) >= len(h.p.Expect) }); !ok {
				t.Fatalf("the source did not dispatch its %d messages within %v", len(h.p.Expect), h.f.Timeout)
			}
		}
		l.stop()
	case h.f.Stored || h.f.NoServe != "":
		l := h.open(rec)
		h.publishAll(l.pub, rec, n, l.deliver)
		l.stop()
	default:
		// The runner's shape: one instance serves and publishes.
		in := h.build(true)
		in.serve(rec)
		in.waitReady()
		// A publishing instance closed while its peer still serves: what
		// it started for publishing (connections and their readers) must
		// end with its Close, not when the peer goes away.
		mid := goroutines()
		pub := h.build(false)
		pub.waitReady()
		h.publishAll(pub, rec, n, pub.close)
		h.noNewGoroutines(mid, "after a publishing instance's Close, while its peer still serves")
		h.publishAll(in, rec, n, func() {})
		in.shutdown()
	}
	h.noNewGoroutines(before, "after Serve returned and Close")
}

// publishAll publishes n messages through in, calls then (deliver, or
// close), and waits until rec has every one.
func (h *harness) publishAll(in *instance, rec *recorder, n int, then func()) {
	h.t.Helper()
	w := want{}
	for range n {
		m, s := h.message(3)
		if err := in.publish(h.ctx(), m); err != nil {
			h.t.Fatalf("Publish message %d: %v", s, err)
		}
		w[s] = m
	}
	then()
	if h.f.NoServe == "" {
		h.waitAll(rec, w)
	}
}

// noNewGoroutines waits until every goroutine started since before has
// ended (Features.IgnoreGoroutines aside), and reports those that do not.
func (h *harness) noNewGoroutines(before map[int64]string, when string) {
	h.t.Helper()
	var left []string
	if !poll(h.f.Timeout, func() bool { left = newGoroutines(before, h.f.IgnoreGoroutines); return len(left) == 0 }) {
		slices.Sort(left)
		h.t.Errorf("%d goroutines started during the subtest are still running %v %s:\n\n%s",
			len(left), h.f.Timeout, when, strings.Join(left, "\n\n"))
	}
}

func readinessDuringOutage(h *harness) {
	t := h.t
	if h.p.Outage == nil {
		t.Fatal("conntest: Features.NoOutage is empty but Peer.Outage is nil: give the Peer a way to take its peer down, or say why not in NoOutage")
	}
	rec := h.newRecorder()
	in := h.build(true)
	r, ok := in.c.(pipeline.Readiness)
	if !ok {
		t.Skipf("%T does not implement pipeline.Readiness", in.c)
	}
	in.serve(rec)
	in.waitReady()
	var once sync.Once
	restore := h.p.Outage(t)
	back := func() { once.Do(restore) }
	t.Cleanup(back)
	if !poll(h.f.Timeout, func() bool { return r.Ready() != nil }) {
		t.Errorf("Ready still reports nil %v after the peer went down", h.f.Timeout)
	}
	back()
	in.waitReady()
	if h.f.NoPublish != "" {
		in.shutdown()
		return
	}
	// Messages flow again: the connector reconnected and re-subscribed.
	// Publish may fail while it settles; retry, at least once is enough.
	m, n := h.message(1)
	var err error
	if !poll(h.f.Timeout, func() bool { err = in.publish(h.ctx(), m); return err == nil }) {
		t.Fatalf("Publish after the peer came back: %v", err)
	}
	if !h.f.Stored {
		rec.waitSeq(t, h.f.Timeout, n)
	}
	in.shutdown()
}

func finiteSourceEnds(h *harness) {
	t := h.t
	rec := h.newRecorder()
	var expect []Message
	if h.f.NoPublish == "" {
		pub := h.build(false)
		pub.waitReady()
		for range h.f.Records {
			m, n := h.message(3)
			if err := pub.publish(h.ctx(), m); err != nil {
				t.Fatalf("Publish message %d: %v", n, err)
			}
			expect = append(expect, m)
		}
		pub.close()
	} else {
		expect = h.p.Expect
		if len(expect) == 0 {
			t.Fatal("conntest: a finite source that does not publish needs Peer.Expect (the messages it dispatches)")
		}
	}
	sub := h.build(true)
	fs, ok := sub.c.(pipeline.FiniteSource)
	if !ok {
		t.Fatalf("%T does not implement pipeline.FiniteSource (set Features.NotFinite if Serve runs until cancelled)", sub.c)
	}
	if !fs.Finite([]pipeline.Subscription{h.sub}) {
		t.Fatalf("Finite(%q %v) = false, want true", h.sub.Filter, h.p.InParams)
	}
	sub.serve(rec)
	sub.serveEnded()
	ds := rec.snapshot()
	if len(ds) != len(expect) {
		t.Errorf("finite source dispatched %d messages before Serve returned, want %d", len(ds), len(expect))
	}
	for i := range min(len(ds), len(expect)) {
		d, m := ds[i], expect[i]
		switch {
		case !bytes.Equal(d.Payload, m.Payload):
			t.Errorf("message %d: payload %q, want %q", i, d.Payload, m.Payload)
		case d.Topic != h.p.Topic:
			t.Errorf("message %d: env.Topic = %q, want %q", i, d.Topic, h.p.Topic)
		case h.f.NoKey == "" && !bytes.Equal(d.Key, m.Key):
			t.Errorf("message %d: key %q, want %q", i, d.Key, m.Key)
		}
	}
	sub.close()
}

// rawEncoder is the encoder of the outbound links BadLinkSettings loads.
type rawEncoder struct{}

func (rawEncoder) Encode(v any) ([]byte, error) {
	b, _ := v.([]byte)
	return b, nil
}

// validate loads a graph with one link of the connector and returns the
// graph's verdict.
func (h *harness) validate(dir pipeline.Direction, addr string, p pipeline.Params) error {
	name := h.p.Builder.Scheme()
	g := pipeline.New().Connector(name, h.p.Builder)
	link := name + "://" + addr
	r := g.Record("conntest.link")
	if dir == pipeline.Inbound {
		r.From(link, pipeline.PayloadOnly, pipeline.WithParams(p))
	} else {
		r.To(link, rawEncoder{}, pipeline.WithParams(p))
	}
	return g.Validate()
}

func badLinkSettings(h *harness) {
	t := h.t
	if len(h.f.BadLinks) == 0 {
		t.Fatal("conntest: Features.BadLinks is empty: list link settings the connector must reject, or say why there are none in NoLinkSettings")
	}
	// The peer's own links load: a rejection below is about the setting.
	if h.f.NoServe == "" {
		if err := h.validate(pipeline.Inbound, h.p.Topic, h.p.InParams); err != nil {
			t.Fatalf("the peer's inbound link does not load: %v", err)
		}
	}
	if h.f.NoPublish == "" {
		if err := h.validate(pipeline.Outbound, h.dest, h.p.OutParams); err != nil {
			t.Fatalf("the peer's outbound link does not load: %v", err)
		}
	}
	for i, bl := range h.f.BadLinks {
		name := bl.Name
		if name == "" {
			name = strconv.Itoa(i)
		}
		t.Run(name, func(t *testing.T) {
			err := h.validate(bl.Dir, bl.Address, bl.Params)
			switch {
			case err == nil:
				t.Errorf("%s link %q %v loaded, want an error mentioning %q", bl.Dir, bl.Address, bl.Params, bl.Want)
			case !strings.Contains(err.Error(), bl.Want):
				t.Errorf("%s link %q %v: error %q does not mention %q", bl.Dir, bl.Address, bl.Params, err, bl.Want)
			default:
				t.Logf("%s link %q %v: %v", bl.Dir, bl.Address, bl.Params, err)
			}
		})
	}
}
