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
// records to the pipeline in the order the fetchers queued them, so the
// records of one partition reach the pipeline in offset order.
type source struct {
	c   *conn
	log *slog.Logger

	mu      sync.Mutex
	state   error
	cg      *kafkago.ConsumerGroup
	cur     *genState
	closing atomic.Bool

	items chan item
}

type item struct {
	p     *partition
	epoch uint64
	msg   kafkago.Message
}

// partition is the state of one assigned partition within a generation.
type partition struct {
	topic  string
	id     int
	opts   ReaderOptions
	reader *kafkago.Reader

	mu        sync.Mutex
	epoch     uint64 // bumped on rewind and revocation; older acks are ignored
	tr        tracker
	nacked    bool
	revoked   bool
	progress  bool
	committed int64 // last committed offset (-1: none)
	fetchCtx  context.Context
	interrupt context.CancelFunc
	bo        pipeline.Backoff
}

type genState struct {
	gen      *kafkago.Generation
	parts    []*partition
	commitMu sync.Mutex
}

func newSource(c *conn) *source {
	return &source{c: c, log: c.log, state: errors.New("kafka: not a group member yet"), items: make(chan item, 256)}
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
			p := &partition{topic: topic, id: a.ID, opts: opts, committed: -1, tr: newTracker(-1),
				bo: pipeline.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}}
			start := a.Offset
			if start >= 0 {
				p.committed = start
				p.tr = newTracker(start)
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
		p.revoked = true
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
		p.epoch++ // late acks are ignored from here on
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
		select {
		case s.items <- item{p: p, epoch: ep, msg: msg}:
		case <-fctx.Done():
			return
		}
	}
}

// rewind handles a nacked record: it waits until the partition's other
// in-flight records settled, resets the watermark to the lowest failed
// offset (everything below it is done), bumps the epoch so that queued and
// late records of the old pass are dropped, waits a backoff and seeks the
// fetcher back to that offset, so the failed record and everything after
// it are delivered again.
func (s *source) rewind(fctx context.Context, p *partition) bool {
	for {
		p.mu.Lock()
		pending := p.tr.pending
		p.mu.Unlock()
		if pending == 0 {
			break
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-t.C:
		case <-fctx.Done():
			t.Stop()
			return false
		}
	}
	p.mu.Lock()
	off, _ := p.tr.commitOffset()
	p.epoch++
	p.tr.reset(off)
	p.nacked = false
	if p.progress {
		p.bo.Reset()
		p.progress = false
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

// dispatch hands queued records to the pipeline, one at a time.
func (s *source) dispatch(ctx context.Context, d pipeline.Dispatcher) {
	for {
		var it item
		select {
		case it = <-s.items:
		case <-ctx.Done():
			return
		}
		p, m := it.p, &it.msg
		p.mu.Lock()
		if it.epoch != p.epoch || p.nacked || p.revoked {
			p.mu.Unlock()
			continue
		}
		p.tr.add(m.Offset)
		p.mu.Unlock()
		env := pipeline.Envelope{Payload: m.Value, Topic: m.Topic, Key: m.Key, Time: m.Time,
			Partition: int32(m.Partition), Offset: m.Offset}
		env.Headers = kit.FromPairs(m.Headers, 0, headerKV)
		env.Ack = pipeline.NewAck(p.ackFunc(it.epoch, m.Offset, s.log))
		if err := d.Dispatch(ctx, &env); err != nil && ctx.Err() != nil {
			return
		}
	}
}

func (p *partition) ackFunc(epoch uint64, off int64, log *slog.Logger) func(error) {
	return func(err error) {
		p.mu.Lock()
		if p.epoch != epoch {
			p.mu.Unlock()
			return
		}
		p.tr.settle(off, err == nil)
		if err == nil {
			p.progress = true
			p.mu.Unlock()
			return
		}
		first := !p.nacked
		p.nacked = true
		interrupt := p.interrupt
		p.mu.Unlock()
		if first {
			log.Debug("kafka record nacked", "topic", p.topic, "partition", p.id, "offset", off, "error", err)
			if interrupt != nil {
				interrupt()
			}
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
		off, ok := p.tr.commitOffset()
		p.mu.Unlock()
		if ok && off != p.committed {
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
		n := 0
		for _, p := range gs.parts {
			p.mu.Lock()
			n += p.tr.pending
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
