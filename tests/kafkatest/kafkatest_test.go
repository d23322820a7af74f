package kafkatest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	kafkago "github.com/segmentio/kafka-go"
)

func TestProduceConsumeRestart(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Persist: true, Topics: map[string]int{"t": 2}})
	cl.Produce(t, "t", kafkatest.Msg("a", "1", "h", "x"), kafkatest.Msg("b", "2"), kafkatest.Msg("c", "3"))
	got := cl.Consume(t, "t", 3, 10*time.Second)
	if len(got) != 3 {
		t.Fatalf("got %d messages", len(got))
	}
	headers := 0
	for _, m := range got {
		headers += len(m.Headers)
	}
	if headers != 1 {
		t.Fatalf("got %d headers, want 1", headers)
	}

	// Commit through a group reader, then restart: data and commits survive.
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: cl.Addrs(), GroupID: "g", Topic: "t", MaxWait: 500 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	cl.Restart()
	lag, err := cl.Lag(ctx, "g", "t")
	if err != nil {
		t.Fatal(err)
	}
	for p, l := range lag {
		if l != 0 {
			t.Errorf("partition %d lag %d after restart, want 0", p, l)
		}
	}
	if again := cl.Consume(t, "t", 3, 10*time.Second); len(again) != 3 {
		t.Fatalf("after restart %d messages", len(again))
	}
	if all, err := cl.ReadAll("t", 0, 10*time.Second); err != nil || len(all) != 3 {
		t.Fatalf("ReadAll to the end: %d, %v", len(all), err)
	}
}

func TestNetCutter(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"t": 1}})
	cut := kafkatest.NewNetCutter()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cut.Dial(ctx, "tcp", cl.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	cut.Cut()
	if _, err := c.Write([]byte{0}); err == nil {
		t.Error("write on a cut connection succeeded")
	}
	if _, err := cut.Dial(ctx, "tcp", cl.Addrs()[0]); !errors.Is(err, kafkatest.ErrCut) {
		t.Errorf("dial after cut: %v, want ErrCut", err)
	}
}
