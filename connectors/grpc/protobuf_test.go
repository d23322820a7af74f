package grpcconn_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/aimdb-dev/aimdb-flow/connectors/grpc/flowpb"
	"github.com/aimdb-dev/aimdb-flow/stages/codec/protobuf"
	"github.com/aimdb-dev/aimdb-flow/tests/flowrun"
)

// TestProtobufOverGRPC publishes protobuf readings to a server-mode
// connector that decodes them with `decode protobuf`, filters on a field
// and writes the hot ones to a file; a payload that is not a Reading and
// a record larger than max_message are refused while the pipeline goes
// on (the bad payload is dead-lettered and acked; the oversized record
// ends its stream with ResourceExhausted).
func TestProtobufOverGRPC(t *testing.T) {
	dir := t.TempDir()
	proto, err := filepath.Abs("testdata/reading.proto")
	if err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	out, dead := filepath.Join(dir, "hot.jsonl"), filepath.Join(dir, "dead.jsonl")
	_, ctx := flowrun.Start(t, `connector edge "grpc://`+addr+`" mode server max_message 2KiB
connector file "file://"
deadletter "file://`+dead+`"
record readings {
  from "edge://readings" decode protobuf "`+proto+`" Reading
}
pipeline hot {
  from readings
  filter `+"`temp > 25`"+`
  to "file://`+out+`" encode json
}
`, 10*time.Second)

	pb, err := protobuf.Load(ctx, proto, "Reading")
	if err != nil {
		t.Fatal(err)
	}
	enc := func(v map[string]any) []byte {
		p, err := pb.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	publish := func(recs ...*flowpb.Record) ([]*flowpb.Ack, error) {
		st, err := flowpb.NewFlowClient(conn).Publish(cctx)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			if err := st.Send(rec); err != nil {
				return nil, err
			}
		}
		_ = st.CloseSend()
		var acks []*flowpb.Ack
		for {
			a, err := st.Recv()
			if err != nil {
				if len(acks) == len(recs) {
					return acks, nil
				}
				return acks, err
			}
			acks = append(acks, a)
		}
	}
	acks, err := publish(
		&flowpb.Record{Seq: 1, Topic: "readings", Payload: enc(map[string]any{"device": "d1", "temp": 20.0})},
		&flowpb.Record{Seq: 2, Topic: "readings", Payload: []byte{0xff, 0xff, 0xff, 0xff}},
		&flowpb.Record{Seq: 3, Topic: "readings", Payload: enc(map[string]any{"device": "d2", "temp": 30.5, "seq": 9.0})},
	)
	if err != nil {
		t.Fatalf("publish: %v (acks %v)", err, acks)
	}
	for _, a := range acks {
		if !a.GetOk() {
			t.Fatalf("ack %v: want every record acked (the bad one once dead-lettered)", a)
		}
	}
	if _, err := publish(&flowpb.Record{Seq: 1, Topic: "readings", Payload: make([]byte, 4<<10)}); err == nil || !strings.Contains(err.Error(), "ResourceExhausted") {
		t.Fatalf("oversized record: %v, want ResourceExhausted", err)
	}
	// The pipeline still runs.
	if _, err := publish(&flowpb.Record{Seq: 1, Topic: "readings", Payload: enc(map[string]any{"device": "d3", "temp": 40.0})}); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	waitFor(t, "hot readings in the file", 10*time.Second, func() bool { return strings.Count(read(out), "\n") >= 2 })
	if got := read(out); got != `{"device":"d2","seq":9,"temp":30.5}`+"\n"+`{"device":"d3","temp":40}`+"\n" {
		t.Fatalf("sink: %q", got)
	}
	waitFor(t, "the dead letter", 10*time.Second, func() bool { return strings.Contains(read(dead), "demo.v1.Reading") })
}
