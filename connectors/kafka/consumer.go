package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	kafkago "github.com/segmentio/kafka-go"
)

// source is the consuming side of a connector: one consumer group member.
//
// Goroutines: Serve's loop takes generations from the group; each
// generation runs runGeneration (commit ticker, revocation) and one fetch
// goroutine per assigned partition; a single dispatch goroutine hands
// records to the pipeline, so the records of one partition reach the
// pipeline in offset order.
//
// Hand-off: a fetcher appends each record to its partition's queue (under
// the partition's lock, at most queueMax records) and, when the queue was
// empty, sends the partition on announced. The dispatch goroutine takes
// the whole queue at once and dispatches it, so the per-record cost of the
// hand-off is an append, not a channel operation on each side.
type source struct {
	c   *conn
	log *slog.Logger

	mu      sync.Mutex
	state   error
	cg      *kafkago.ConsumerGroup
	cur     *genState
	closing atomic.Bool

	// announced lists partitions whose queue has records, each at most
	// once at a time (partition.queued).
	announced chan *partition
}

// queueMax bounds the records a partition's fetcher queues ahead of
// dispatch (kafka-go's reader buffers another 100 behind it).
const queueMax = 256

// partition is the state of one assigned partition within a generation.
type partition struct {
	topic  string
	id     int
	opts   ReaderOptions
	reader *kafkago.Reader
	log    *slog.Logger
	// space is signalled when dispatch took the queue (a full queue's
	// fetcher waits for it).
	space chan struct{}

	mu sync.Mutex
	// epoch is bumped on rewind and at the end of the generation; a
	// record fetched in an older epoch is not queued.
	epoch uint64
	// pass is the current watermark; a new one starts at every rewind.
	pass   *pass
	q      []kafkago.Message // fetched, not yet taken by dispatch
	queued bool              // on source.announced, not yet taken
	nacked bool
	// committed is the last committed offset (-1: none), under
	// genState.commitMu.
	committed int64
	fetchCtx  context.Context
	interrupt context.CancelFunc
	bo        pipeline.Backoff

	// spare is the backing array dispatch hands back for q (dispatch
	// goroutine; swapped in under mu).
	spare []kafkago.Message
}

type genState struct {
	gen      *kafkago.Generation
	parts    []*partition
	commitMu sync.Mutex
}

func newSource(c *conn) *source {
	return &source{c: c, log: c.log, state: errors.New("kafka: not a group member yet"), announced: make(chan *partition, 1024)}
}

func (s *source) ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *source) setState(err error) {
	s.mu.Lock()
	s.state = err
	s.mu.Unlock()
}

func (s *source) kafkaLogger() kafkago.Logger {
	return kafkago.LoggerFunc(func(msg string, args ...any) {
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("kafka-go: " + fmt.Sprintf(msg, args...))
		}
	})
}

// Serve implements pipeline.Source: it joins the consumer group (retrying
// with backoff while the cluster is unreachable) and consumes the assigned
// partitions of every subscribed topic until ctx ends. The group
// membership outlives Serve until Close, so that records still draining
// through the pipeline can be committed.
func (c *conn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	s := c.src
	if s == nil {
		<-ctx.Done()
		return nil
	}
	topicOpts := map[string]ReaderOptions{}
	var topics []string
	for _, sub := range subs {
		if _, ok := topicOpts[sub.Filter]; ok {
			continue
		}
		o := c.cfg.Reader
		if in, ok := sub.Options.(In); ok {
			o = in.ReaderOptions.merge(c.cfg.Reader)
		}
		topicOpts[sub.Filter] = o
		topics = append(topics, sub.Filter)
	}
	sort.Strings(topics)
	cg, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                     c.cfg.Group,
		Brokers:                c.cfg.Brokers,
		Dialer:                 c.dialer(),
		Topics:                 topics,
		HeartbeatInterval:      c.cfg.HeartbeatInterval,
		SessionTimeout:         c.cfg.SessionTimeout,
		RebalanceTimeout:       c.cfg.RebalanceTimeout,
		JoinGroupBackoff:       250 * time.Millisecond,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		StartOffset:            kafkago.FirstOffset,
		Timeout:                5 * time.Second,
		Logger:                 s.kafkaLogger(),
	})
	if err != nil {
		return fmt.Errorf("kafka consumer group: %w", err)
	}
	s.mu.Lock()
	s.cg = cg
	s.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.dispatch(ctx, d)
	}()
	bo := pipeline.Backoff{Min: 200 * time.Millisecond, Max: 10 * time.Second}
	failures := 0
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafkago.ErrGroupClosed) {
				break
			}
			failures++
			s.setState(fmt.Errorf("kafka group %q: %w", c.cfg.Group, err))
			lvl := slog.LevelWarn
			if failures > 3 && failures%20 != 0 {
				lvl = slog.LevelDebug
			}
			s.log.Log(ctx, lvl, "kafka consumer group unavailable; retrying", "group", c.cfg.Group, "error", err, "attempt", failures)
			if !bo.Sleep(ctx) {
				break
			}
			continue
		}
		bo.Reset()
		failures = 0
		s.setState(nil)
		gs := s.newGeneration(gen, topicOpts)
		gen.Start(func(gctx context.Context) { s.runGeneration(ctx, gctx, gs) })
	}
	wg.Wait()
	return nil
}

func (s *source) newGeneration(gen *kafkago.Generation, topicOpts map[string]ReaderOptions) *genState {
	gs := &genState{gen: gen}
	for topic, assigned := range gen.Assignments {
		opts, ok := topicOpts[topic]
		if !ok {
			continue
		}
		for _, a := range assigned {
			p := &partition{topic: topic, id: a.ID, opts: opts, committed: -1, log: s.log, space: make(chan struct{}, 1),
				bo: pipeline.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}}
			start, next := a.Offset, int64(-1)
			if start >= 0 {
				p.committed, next = start, start
			} else if opts.StartOffset == StartLast {
				start = kafkago.LastOffset
			} else {
				start = kafkago.FirstOffset
			}
			p.reader = kafkago.NewReader(kafkago.ReaderConfig{
				Brokers:        s.c.cfg.Brokers,
				Topic:          topic,
				Partition:      a.ID,
				Dialer:         s.c.dialer(),
				MinBytes:       opts.MinBytes,
				MaxBytes:       opts.MaxBytes,
				MaxWait:        opts.MaxWait,
				ReadBackoffMin: 100 * time.Millisecond,
				ReadBackoffMax: 2 * time.Second,
				Logger:         s.kafkaLogger(),
			})
			p.pass = newPass(p, next)
			_ = p.reader.SetOffset(start) // cannot fail on a fresh reader
			gs.parts = append(gs.parts, p)
		}
	}
	sort.Slice(gs.parts, func(i, j int) bool {
		if gs.parts[i].topic != gs.parts[j].topic {
			return gs.parts[i].topic < gs.parts[j].topic
		}
		return gs.parts[i].id < gs.parts[j].id
	})
	return gs
}

func (gs *genState) assignment() map[string][]int {
	m := map[string][]int{}
	for _, p := range gs.parts {
		m[p.topic] = append(m[p.topic], p.id)
	}
	return m
}

// runGeneration runs one generation: fetchers per partition and the commit
// ticker. When the generation ends (rebalance, or the group closing) it
// stops the fetchers, lets in-flight records of the revoked partitions
// finish for up to RevokeTimeout, commits the watermarks and abandons what
// is left (those records are redelivered to the next owner).
func (s *source) runGeneration(serveCtx, gctx context.Context, gs *genState) {
	cfg := &s.c.cfg
	s.mu.Lock()
	s.cur = gs
	s.mu.Unlock()
	s.log.Info("kafka partitions assigned", "group", cfg.Group, "generation", gs.gen.ID, "partitions", gs.assignment())
	if cfg.OnAssign != nil {
		cfg.OnAssign(gs.assignment())
	}

	fctx, fcancel := context.WithCancel(serveCtx)
	stop := context.AfterFunc(gctx, fcancel)
	var fw sync.WaitGroup
	for _, p := range gs.parts {
		p.fetchCtx, p.interrupt = context.WithCancel(fctx)
		fw.Add(1)
		go func() {
			defer fw.Done()
			s.fetch(fctx, p)
		}()
	}
	tick := time.NewTicker(cfg.CommitInterval)
	for done := false; !done; {
		select {
		case <-tick.C:
			_ = s.commit(gs)
		case <-gctx.Done():
			done = true
		}
	}
	tick.Stop()
	stop()
	fcancel()
	fw.Wait()
	for _, p := range gs.parts {
		p.mu.Lock()
		p.pass.halted.Store(true) // revoked: dispatch drops what it still holds
		p.mu.Unlock()
	}
	if !s.closing.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.RevokeTimeout)
		if !s.waitSettled(ctx, gs) {
			s.log.Warn("kafka: in-flight records of revoked partitions did not finish; abandoning them to the next owner",
				"group", cfg.Group, "timeout", cfg.RevokeTimeout)
		}
		cancel()
	}
	_ = s.commit(gs)
	for _, p := range gs.parts {
		p.mu.Lock()
		p.epoch++
		p.pass.ended = true // late acks are ignored from here on
		p.mu.Unlock()
	}
	s.mu.Lock()
	if s.cur == gs {
		s.cur = nil
	}
	s.mu.Unlock()
	s.log.Info("kafka partitions revoked", "group", cfg.Group, "generation", gs.gen.ID)
	if cfg.OnRevoke != nil {
		cfg.OnRevoke(gs.assignment())
	}
}

// fetch reads one partition and queues its records for dispatch, in
// offset order. After a nack it rewinds the partition (see rewind).
func (s *source) fetch(fctx context.Context, p *partition) {
	defer p.reader.Close()
	for fctx.Err() == nil {
		p.mu.Lock()
		if p.nacked {
			p.mu.Unlock()
			if !s.rewind(fctx, p) {
				return
			}
			continue
		}
		ictx, ep := p.fetchCtx, p.epoch
		p.mu.Unlock()
		msg, err := p.reader.FetchMessage(ictx)
		if err != nil {
			if fctx.Err() != nil {
				return
			}
			if ictx.Err() != nil {
				continue // interrupted by a nack
			}
			s.log.Debug("kafka fetch failed; retrying", "topic", p.topic, "partition", p.id, "error", err)
			t := time.NewTimer(p.bo.Next())
			select {
			case <-t.C:
			case <-fctx.Done():
				t.Stop()
				return
			}
			continue
		}
		if !s.enqueue(fctx, p, ep, &msg) {
			return
		}
	}
}

// enqueue appends a record fetched in epoch ep to p's queue, waiting while
// the queue is full, and sends p on announced when the queue was empty. A
// record of an older epoch, or fetched after a nack, is dropped (it is
// fetched again after the rewind). It returns false when fctx ended.
func (s *source) enqueue(fctx context.Context, p *partition, ep uint64, m *kafkago.Message) bool {
	p.mu.Lock()
	for len(p.q) >= queueMax && p.epoch == ep && !p.nacked {
		p.mu.Unlock()
		select {
		case <-p.space:
		case <-fctx.Done():
			return false
		}
		p.mu.Lock()
	}
	if p.epoch != ep || p.nacked {
		p.mu.Unlock()
		return true
	}
	p.q = append(p.q, *m)
	announce := !p.queued
	p.queued = true
	p.mu.Unlock()
	if announce {
		select {
		case s.announced <- p:
		case <-fctx.Done():
			return false
		}
	}
	return true
}

// rewind handles a nacked record: it waits until the partition's other
// in-flight records settled, resets the watermark to the lowest failed
// offset (everything below it is done), bumps the epoch so that queued and
// late records of the old pass are dropped, waits a backoff and seeks the
// fetcher back to that offset, so the failed record and everything after
// it are delivered again.
func (s *source) rewind(fctx context.Context, p *partition) bool {
	p.mu.Lock()
	ps := p.pass
	p.mu.Unlock()
	for ps.pending.Load() != 0 {
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-t.C:
		case <-fctx.Done():
			t.Stop()
			return false
		}
	}
	p.mu.Lock()
	off, _ := ps.commitOffset()
	p.epoch++
	p.pass = newPass(p, off)
	clear(p.q) // records of the old pass
	p.q = p.q[:0]
	p.nacked = false
	if ps.progressed.Load() {
		p.bo.Reset()
	}
	old := p.interrupt
	p.fetchCtx, p.interrupt = context.WithCancel(fctx)
	p.mu.Unlock()
	if old != nil {
		old() // release the previous fetch context
	}
	delay := p.bo.Next()
	s.log.Warn("kafka: record not acknowledged; redelivering partition", "topic", p.topic, "partition", p.id,
		"offset", off, "after", delay)
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case <-fctx.Done():
		t.Stop()
		return false
	}
	if err := p.reader.SetOffset(off); err != nil {
		return false
	}
	return true
}

// headerKV is a Kafka record header as a key and a value (for
// kit.FromPairs).
func headerKV(h kafkago.Header) (key, value string) { return h.Key, string(h.Value) }

// dispatch hands queued records to the pipeline: for each partition
// received on announced it takes the whole queue and dispatches its
// records in order. One envelope serves every record (the dispatcher
// copies what it keeps, see pipeline.Dispatcher).
func (s *source) dispatch(ctx context.Context, d pipeline.Dispatcher) {
	env := new(pipeline.Envelope)
	for {
		var p *partition
		select {
		case p = <-s.announced:
		case <-ctx.Done():
			return
		}
		p.mu.Lock()
		msgs, ps := p.q, p.pass
		p.q, p.spare = p.spare, nil
		p.queued = false
		p.mu.Unlock()
		select {
		case p.space <- struct{}{}:
		default:
		}
		for i := range msgs {
			if !dispatchOne(ctx, d, ps, &msgs[i], env) {
				break
			}
		}
		clear(msgs) // drop the payload references until the array is reused
		p.spare = msgs[:0]
		if ctx.Err() != nil {
			return
		}
	}
}

// dispatchOne dispatches m with an ack tracked in ps. It returns false
// when the rest of the batch is to be dropped: ps halted (a nack, the end
// of the generation; the records are fetched again) or ctx ended.
func dispatchOne(ctx context.Context, d pipeline.Dispatcher, ps *pass, m *kafkago.Message, env *pipeline.Envelope) bool {
	// Counted before halted is checked: whoever halts the pass and then
	// waits for pending to drain also waits for this record, unless it
	// is dropped here.
	ps.pending.Add(1)
	if ps.halted.Load() {
		ps.pending.Add(-1)
		return false
	}
	*env = pipeline.Envelope{Payload: m.Value, Topic: m.Topic, Key: m.Key, Time: m.Time,
		Partition: int32(m.Partition), Offset: m.Offset, Headers: kit.FromPairs(m.Headers, 0, headerKV),
		Ack: ps.track(m.Offset)}
	if err := d.Dispatch(ctx, env); err != nil && ctx.Err() != nil {
		return false
	}
	return true
}

// nack handles a record of pass ps that settled with err (its watermark
// entry is st): unless ps is no longer the partition's pass, the entry is
// marked failed, the pass halted, and the fetcher interrupted so that it
// rewinds the partition.
func (p *partition) nack(ps *pass, off int64, st *atomic.Uint32, err error) {
	p.mu.Lock()
	st.Store(stateFailed)
	ps.pending.Add(-1)
	if p.pass != ps || ps.ended {
		p.mu.Unlock()
		return
	}
	ps.halted.Store(true)
	first := !p.nacked
	p.nacked = true
	interrupt := p.interrupt
	p.mu.Unlock()
	if first {
		p.log.Debug("kafka record nacked", "topic", p.topic, "partition", p.id, "offset", off, "error", err)
		if interrupt != nil {
			interrupt()
		}
	}
}

// commit commits every partition whose watermark moved.
func (s *source) commit(gs *genState) error {
	gs.commitMu.Lock()
	defer gs.commitMu.Unlock()
	offs := map[string]map[int]int64{}
	for _, p := range gs.parts {
		p.mu.Lock()
		ps := p.pass
		off, ok := ps.commitOffset()
		ended := ps.ended
		p.mu.Unlock()
		if ok && !ended && off != p.committed {
			if offs[p.topic] == nil {
				offs[p.topic] = map[int]int64{}
			}
			offs[p.topic][p.id] = off
		}
	}
	if len(offs) == 0 {
		return nil
	}
	if err := gs.gen.CommitOffsets(offs); err != nil {
		s.log.Warn("kafka offset commit failed", "group", s.c.cfg.Group, "error", err)
		return fmt.Errorf("kafka commit: %w", err)
	}
	for _, p := range gs.parts {
		if off, ok := offs[p.topic][p.id]; ok {
			p.committed = off
		}
	}
	return nil
}

// waitSettled waits until no record of gs is in flight, or ctx ends.
func (s *source) waitSettled(ctx context.Context, gs *genState) bool {
	for {
		var n int64
		for _, p := range gs.parts {
			p.mu.Lock()
			n += p.pass.pending.Load()
			p.mu.Unlock()
		}
		if n == 0 {
			return true
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
}

// close commits the final watermarks (after the runner drained) and leaves
// the group.
func (s *source) close(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	gs, cg := s.cur, s.cg
	s.mu.Unlock()
	var errs []error
	if gs != nil {
		if !s.waitSettled(ctx, gs) {
			s.log.Warn("kafka: records still in flight at close; committing what finished", "group", s.c.cfg.Group)
		}
		if err := s.commit(gs); err != nil {
			errs = append(errs, err)
		}
	}
	if cg != nil {
		if err := closeWithin(ctx, cg.Close); err != nil {
			errs = append(errs, fmt.Errorf("kafka leave group: %w", err))
		}
	}
	return errors.Join(errs...)
}
