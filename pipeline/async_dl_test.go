package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// asyncSink confirms publishes from another goroutine, the way a broker
// reports outcomes after the hand-off: payload "bad" is rejected
// permanently, "retry" fails transiently, anything else succeeds.
type asyncSink struct{ wg sync.WaitGroup }

func (s *asyncSink) Scheme() string { return "async" }
func (s *asyncSink) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return s, nil
}
func (s *asyncSink) Publish(context.Context, string, any, *pipeline.Envelope) error {
	return errors.New("sync path not used")
}
func (s *asyncSink) Close(context.Context) error { s.wg.Wait(); return nil }
func (s *asyncSink) PublishAsync(_ context.Context, _ string, _ any, env *pipeline.Envelope) error {
	payload, ack := string(env.Payload), env.Ack
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		switch payload {
		case `"bad"`:
			ack.Finish(pipeline.Permanent(errors.New("policy violation")))
		case `"retry"`:
			ack.Finish(errors.New("connection lost"))
		default:
			ack.Done()
		}
	}()
	return nil
}

// oneSource dispatches one message, with an ack reporting to acked unless
// noAck (a source that cannot redeliver), and ends.
type oneSource struct {
	payload string
	noAck   bool
	acked   chan error
}

func (s *oneSource) Scheme() string { return "one" }
func (s *oneSource) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return s, nil
}
func (s *oneSource) Publish(context.Context, string, any, *pipeline.Envelope) error {
	return errors.New("source only")
}
func (s *oneSource) Close(context.Context) error         { return nil }
func (s *oneSource) Finite([]pipeline.Subscription) bool { return true }
func (s *oneSource) Serve(ctx context.Context, _ []pipeline.Subscription, d pipeline.Dispatcher) error {
	env := pipeline.Envelope{Topic: "in", Payload: []byte(s.payload)}
	if !s.noAck {
		env.Ack = pipeline.NewAck(func(err error) { s.acked <- err })
	}
	return d.Dispatch(ctx, &env)
}

// The runner, not the connector, decides what an asynchronous outcome
// means: a permanent failure is dead-lettered with full provenance and the
// source message acknowledged; a transient one rejects the source message
// so it is redelivered; with a source that cannot redeliver (no ack) even
// a transient failure is dead-lettered rather than dropped.
func TestAsyncOutcomesAreSettledByTheRunner(t *testing.T) {
	tests := []struct {
		payload string
		noAck   bool   // the source gives no ack (a file, a generator)
		wantAck string // the source's outcome: "ok", or the error
		wantDL  string // the dead letter's error, "" for none
	}{
		{payload: `"good"`, wantAck: "ok"},
		{payload: `"bad"`, wantAck: "ok", wantDL: "policy violation"},
		{payload: `"retry"`, wantAck: "connection lost"},
		{payload: `"retry"`, noAck: true, wantDL: "connection lost"},
	}
	for _, tc := range tests {
		t.Run(tc.payload, func(t *testing.T) {
			bus := mem.NewBus()
			src := &oneSource{payload: tc.payload, noAck: tc.noAck, acked: make(chan error, 1)}
			g := pipeline.New().Connector("", mem.New(bus)).Connector("", &asyncSink{}).Connector("", src)
			g.Record("in").From("one://in", codec.JSON{})
			g.Pipeline("p").From("in").To("async://out", codec.JSON{})
			g.DeadLetterTo("mem://dlq", codec.Raw{})
			r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			dlq, unsub := bus.Subscribe("dlq", 4)
			defer unsub()
			if err := r.Run(context.Background()); err != nil { // finite: returns once drained
				t.Fatal(err)
			}
			if !tc.noAck {
				got := "ok"
				if err := <-src.acked; err != nil {
					got = err.Error()
				}
				if got != tc.wantAck {
					t.Errorf("source ack: %s, want %s", got, tc.wantAck)
				}
			}
			if tc.wantDL != "" {
				var d pipeline.DeadLetter
				if err := json.Unmarshal(recv(t, dlq).Payload, &d); err != nil {
					t.Fatal(err)
				}
				want := pipeline.DeadLetter{Pipeline: "p", Stage: "publish async://out", Record: "in", Link: "async://out",
					Error: tc.wantDL, Topic: "out", Payload: tc.payload, PayloadSize: len(tc.payload)}
				d.Time = want.Time
				if d.Pipeline != want.Pipeline || d.Stage != want.Stage || d.Record != want.Record || d.Link != want.Link ||
					d.Error != want.Error || d.Topic != want.Topic || d.Payload != want.Payload || d.PayloadSize != want.PayloadSize {
					t.Errorf("dead letter %+v, want %+v", d, want)
				}
			}
			wantN := uint64(0)
			if tc.wantDL != "" {
				wantN = 1
			}
			if n := r.Stats().DeadLetters; n != wantN {
				t.Errorf("dead letters = %d, want %d", n, wantN)
			}
			select {
			case d := <-dlq:
				t.Errorf("unexpected dead letter %s", d.Payload)
			default:
			}
		})
	}
}
