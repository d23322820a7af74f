package modbus_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/modbus"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestUnitPerLink: a server answering unit 2 only, and a client with one
// link at unit 2 and one at the connector's unit 1: the first polls, the
// second gets exception 11 (gateway target failed to respond), counted.
func TestUnitPerLink(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	srvB := builder(t, "modbus://127.0.0.1:"+port, pipeline.Params{"mode": "server", "unit": "2"})
	srv := build(t, srvB)
	wopts := linkOpts(t, srvB, pipeline.Outbound, "s", pipeline.Params{"field.x": "holding 0"})
	if err := srv.Publish(context.Background(), "s", wopts, &pipeline.Envelope{Payload: []byte(`{"x":42}`)}); err != nil {
		t.Fatal(err)
	}
	b := builder(t, "modbus://127.0.0.1:"+port, nil)
	o := func(p pipeline.Params) any { return linkOpts(t, b, pipeline.Inbound, "x", p) }
	subs := []pipeline.Subscription{
		{Filter: "two", Options: o(pipeline.Params{"field.x": "holding 0", "unit": "2", "interval": "10ms"})},
		{Filter: "one", Options: o(pipeline.Params{"field.x": "holding 0", "interval": "10ms"})},
	}
	c, err := b.Build(context.Background(), pipeline.BuildEnv{Inbound: subs})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.(pipeline.Source).Serve(ctx, subs, rec) }()
	defer func() {
		cancel()
		<-done
		_ = c.Close(context.Background())
	}()
	conn := c.(*modbus.Conn)
	if !rec.waitPayload(15*time.Second, `{"x":42}`) || !waitFor(15*time.Second, func() bool { return conn.Stats().Exceptions >= 2 }) {
		t.Fatalf("records %d, stats %+v", len(rec.all()), conn.Stats())
	}
	for _, e := range rec.all() {
		if e.Topic != "two" {
			t.Fatalf("a record from link %s (unit 1)", e.Topic)
		}
	}
	if st := conn.Stats(); !strings.Contains(st.LastError, "gateway target device failed to respond") {
		t.Fatalf("last error %q", st.LastError)
	}
}
