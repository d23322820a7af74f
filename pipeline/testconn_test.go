package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// chanConn is a test connector (scheme "chan") that observes acks end to
// end. As a source it dispatches what the test sends with inject, each
// message carrying an ack whose outcome arrives on the returned channel. As
// a sink it is an AsyncPublisher that hands every publish to the test
// (published), which settles it with Finish when it chooses; a payload
// containing "reject" sent to destination "copy" fails the hand-off
// synchronously. Dead letters (the
// runner publishes them synchronously) arrive on dead.
type chanConn struct {
	in        chan *pipeline.Envelope
	published chan pubCall
	dead      chan pipeline.Envelope
}

type pubCall struct {
	dest    string
	payload string
	ack     *pipeline.Ack
}

func newChanConn() *chanConn {
	return &chanConn{in: make(chan *pipeline.Envelope), published: make(chan pubCall, 16), dead: make(chan pipeline.Envelope, 16)}
}

func (c *chanConn) Scheme() string { return "chan" }
func (c *chanConn) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return c, nil
}
func (c *chanConn) Close(context.Context) error { return nil }

// Publish is the synchronous path, used by the runner for dead letters.
func (c *chanConn) Publish(_ context.Context, dest string, _ any, env *pipeline.Envelope) error {
	e := *env
	e.Topic = dest
	e.Payload = append([]byte(nil), env.Payload...)
	c.dead <- e
	return nil
}

func (c *chanConn) PublishAsync(_ context.Context, dest string, _ any, env *pipeline.Envelope) error {
	if dest == "copy" && strings.Contains(string(env.Payload), "reject") {
		return errors.New("sink rejected the hand-off")
	}
	c.published <- pubCall{dest: dest, payload: string(env.Payload), ack: env.Ack}
	return nil
}

func (c *chanConn) Serve(ctx context.Context, _ []pipeline.Subscription, d pipeline.Dispatcher) error {
	for {
		select {
		case env := <-c.in:
			if err := d.Dispatch(ctx, env); err != nil {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// outcome is what a source message's ack reported, and how many times.
type outcome struct {
	mu    sync.Mutex
	calls int
	err   error
	done  chan struct{} // closed at the first call
}

// inject sends one message into the graph from the source and returns its
// outcome.
func (c *chanConn) inject(t *testing.T, topic, payload string) *outcome {
	t.Helper()
	o := &outcome{done: make(chan struct{})}
	env := &pipeline.Envelope{Topic: topic, Payload: []byte(payload)}
	env.Ack = pipeline.NewAck(func(err error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.calls++
		o.err = err
		if o.calls == 1 {
			close(o.done)
		}
	})
	select {
	case c.in <- env:
	case <-time.After(5 * time.Second):
		t.Fatalf("source did not take %s", payload)
	}
	return o
}

// settled reports whether the ack callback has run.
func (o *outcome) settled() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// wait blocks until the ack callback ran (5 s hang detector) and returns
// its error.
func (o *outcome) wait(t *testing.T, what string) error {
	t.Helper()
	select {
	case <-o.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: source message never settled", what)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// count returns how many times the callback ran.
func (o *outcome) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls
}

// nextPub waits for the next publish hand-off.
func (c *chanConn) nextPub(t *testing.T) pubCall {
	t.Helper()
	select {
	case p := <-c.published:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a publish")
	}
	return pubCall{}
}

// nextDead waits for the next dead letter.
func (c *chanConn) nextDead(t *testing.T) pipeline.Envelope {
	t.Helper()
	select {
	case e := <-c.dead:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a dead letter")
	}
	return pipeline.Envelope{}
}
