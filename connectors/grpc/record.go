package grpcconn

import (
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/grpc/flowpb"
	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// toRecord copies what travels of env into a Record (the envelope is
// reused by the runner).
func toRecord(seq uint64, topic string, env *pipeline.Envelope) *flowpb.Record {
	r := &flowpb.Record{Seq: seq, Topic: topic, Payload: clone(env.Payload), Key: clone(env.Key)}
	if !env.Time.IsZero() {
		r.TimeUnixNano = env.Time.UnixNano()
	}
	r.Headers = kit.AppendPairs(r.Headers, env.Headers, nil, func(k, v string) *flowpb.Header {
		return &flowpb.Header{Key: k, Value: v}
	})
	return r
}

// fromRecord fills env from r (the record is not reused: no copies).
func fromRecord(env *pipeline.Envelope, r *flowpb.Record) {
	env.Payload, env.Key, env.Topic = r.GetPayload(), r.GetKey(), r.GetTopic()
	if len(env.Key) == 0 {
		env.Key = nil
	}
	if ns := r.GetTimeUnixNano(); ns != 0 {
		env.Time = time.Unix(0, ns)
	} else {
		env.Time = time.Now()
	}
	if hs := r.GetHeaders(); len(hs) > 0 {
		env.Headers = kit.FromPairs(hs, 0, func(h *flowpb.Header) (string, string) { return h.GetKey(), h.GetValue() })
	}
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
