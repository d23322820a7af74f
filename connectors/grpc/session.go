package grpcconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/aimdb-dev/aimdb-flow/connectors/grpc/flowpb"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// pubSession is one Publish stream and the acks waiting on it.
type pubSession struct {
	c      *client
	stream flowpb.Flow_PublishClient
	cancel context.CancelFunc

	sendMu  sync.Mutex // Send is not safe for concurrent use
	mu      sync.Mutex
	seq     uint64
	pending map[uint64]*pipeline.Ack
	empty   chan struct{} // closed and replaced when pending drains
	ended   error
}

// errStreamLost finishes the acks of records a broken stream left
// unacknowledged: transient, the source sends them again.
var errStreamLost = errors.New("grpc: publish stream lost before the record was acknowledged")

func (c *client) openPublish(ctx context.Context) (*pubSession, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// The stream opens once a connection is up; a server refusing it
	// answers on the first Recv (Serve then ends the session).
	stream, err := c.flow.Publish(sctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open publish stream: %w", err)
	}
	return &pubSession{c: c, stream: stream, cancel: cancel, pending: map[uint64]*pipeline.Ack{}, empty: make(chan struct{})}, nil
}

func (s *pubSession) send(rec *flowpb.Record, ack *pipeline.Ack) error {
	s.mu.Lock()
	if s.ended != nil {
		why := s.ended
		s.mu.Unlock()
		s.c.release()
		ack.Finish(why)
		return nil
	}
	s.seq++
	rec.Seq = s.seq
	s.pending[rec.Seq] = ack
	s.mu.Unlock()
	s.sendMu.Lock()
	err := s.stream.Send(rec)
	s.sendMu.Unlock()
	return err // the acks of a broken stream are finished by Serve
}

// settle finishes the ack of seq with err.
func (s *pubSession) settle(seq uint64, err error) {
	s.mu.Lock()
	ack, ok := s.pending[seq]
	delete(s.pending, seq)
	if ok && len(s.pending) == 0 {
		close(s.empty)
		s.empty = make(chan struct{})
	}
	s.mu.Unlock()
	if ok {
		s.c.release()
		ack.Finish(err)
	}
}

// Serve reads the Acks until the stream breaks; then every pending
// record is finished with errStreamLost.
func (s *pubSession) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, s.cancel)
	defer stop()
	var err error
	for {
		var a *flowpb.Ack
		if a, err = s.stream.Recv(); err != nil {
			break
		}
		switch {
		case a.GetOk():
			s.settle(a.GetSeq(), nil)
		case a.GetPermanent():
			s.settle(a.GetSeq(), pipeline.Permanent(fmt.Errorf("grpc server refused the record: %s", a.GetError())))
		default:
			s.settle(a.GetSeq(), fmt.Errorf("grpc server did not take the record: %s", a.GetError()))
		}
	}
	s.fail(err)
	if errors.Is(err, io.EOF) || ctx.Err() != nil {
		return nil
	}
	return err
}

// fail ends the session and finishes what is pending.
func (s *pubSession) fail(err error) {
	s.mu.Lock()
	if s.ended == nil {
		s.ended = fmt.Errorf("%w: %v", errStreamLost, err)
	}
	pending, why := s.pending, s.ended
	s.pending = map[uint64]*pipeline.Ack{}
	close(s.empty)
	s.empty = make(chan struct{})
	s.mu.Unlock()
	for _, ack := range pending {
		s.c.release()
		ack.Finish(why)
	}
}

// drain waits until no record is pending (or ctx ends).
func (s *pubSession) drain(ctx context.Context) error {
	for {
		s.mu.Lock()
		n, ch := len(s.pending), s.empty
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("grpc: close: %d records unacknowledged: %w", n, ctx.Err())
		}
	}
}

// Close implements kit.Session.
func (s *pubSession) Close() error {
	s.sendMu.Lock()
	_ = s.stream.CloseSend()
	s.sendMu.Unlock()
	s.cancel()
	s.fail(context.Canceled)
	return nil
}

// subSession is one Subscribe stream.
type subSession struct {
	c      *client
	stream flowpb.Flow_SubscribeClient
	cancel context.CancelFunc
}

func (c *client) openSubscribe(ctx context.Context, topic string) (*subSession, error) {
	sctx, cancel := context.WithCancel(ctx)
	stream, err := c.flow.Subscribe(sctx, &flowpb.SubscribeRequest{Topic: topic})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open subscribe stream for %s: %w", topic, err)
	}
	return &subSession{c: c, stream: stream, cancel: cancel}, nil
}

// Serve dispatches the records of the stream (no acks: Subscribe is
// at-most-once) until it breaks or ctx ends.
func (s *subSession) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, s.cancel)
	defer stop()
	s.c.mu.Lock()
	d := s.c.d
	s.c.mu.Unlock()
	for {
		rec, err := s.stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		env := &pipeline.Envelope{Partition: -1}
		fromRecord(env, rec)
		if err := d.Dispatch(ctx, env); err != nil {
			return nil
		}
	}
}

// Close implements kit.Session.
func (s *subSession) Close() error { s.cancel(); return nil }
