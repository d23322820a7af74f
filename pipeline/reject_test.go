package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// rejectSource hands one message to Reject (as a connector does with a
// frame its protocol refuses) and one good one to Dispatch.
type rejectSource struct{ acked chan error }

func (s *rejectSource) Scheme() string { return "rej" }
func (s *rejectSource) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return s, nil
}
func (s *rejectSource) Publish(context.Context, string, any, *pipeline.Envelope) error {
	return errors.New("source only")
}
func (s *rejectSource) Close(context.Context) error         { return nil }
func (s *rejectSource) Finite([]pipeline.Subscription) bool { return true }
func (s *rejectSource) Serve(ctx context.Context, _ []pipeline.Subscription, d pipeline.Dispatcher) error {
	rj, ok := d.(pipeline.Rejecter)
	if !ok {
		return errors.New("the runner's dispatcher is not a Rejecter")
	}
	bad := pipeline.Envelope{Topic: "in", Payload: []byte{0x01}, Ack: pipeline.NewAck(func(err error) { s.acked <- err })}
	if err := rj.Reject(ctx, &bad, errors.New("one byte for a 2-byte float")); err != nil {
		return err
	}
	good := pipeline.Envelope{Topic: "in", Payload: []byte(`{"v":1}`)}
	return d.Dispatch(ctx, &good)
}

// A rejected message is dead-lettered with its reason and provenance (stage
// receive, record, link), its ack released once the dead letter is stored,
// and the run goes on with the next message.
func TestRejectDeadLettersWithReason(t *testing.T) {
	bus := mem.NewBus()
	src := &rejectSource{acked: make(chan error, 1)}
	g := pipeline.New().Connector("", mem.New(bus)).Connector("", src)
	g.Record("in").From("rej://in", codec.JSON{})
	g.Pipeline("p").From("in").To("mem://out", codec.JSON{})
	g.DeadLetterTo("mem://dlq", codec.Raw{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dlq, unsubDL := bus.Subscribe("dlq", 4)
	defer unsubDL()
	out, unsubOut := bus.Subscribe("out", 4)
	defer unsubOut()
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-src.acked; err != nil {
		t.Fatalf("rejected message's ack: %v, want released after its dead letter", err)
	}
	var dl pipeline.DeadLetter
	select {
	case m := <-dlq:
		if err := json.Unmarshal(m.Payload, &dl); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("no dead letter")
	}
	if dl.Stage != "receive" || dl.Record != "in" || dl.Link != "rej://in" || dl.Error != "one byte for a 2-byte float" {
		t.Fatalf("dead letter %+v", dl)
	}
	select {
	case m := <-out:
		if string(m.Payload) != `{"v":1}` {
			t.Fatalf("after the rejection got %s", m.Payload)
		}
	default:
		t.Fatal("the good message after the rejected one did not arrive")
	}
}
