package mqtt

import (
	"context"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// The header mapping sits on the per-message path: these benchmarks
// report its allocations (run with -benchmem).

type nopDispatcher struct{}

func (nopDispatcher) Dispatch(_ context.Context, env *pipeline.Envelope) error {
	env.Ack.Done()
	return nil
}

var headerCases = []struct {
	name    string
	headers pipeline.Headers
}{
	{"none", nil},
	{"traceparent", pipeline.Headers{{Key: "traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}},
	{"three+content-type", pipeline.Headers{{Key: "traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{Key: "x-device", Value: "d-1"}, {Key: "content-type", Value: "application/json"}, {Key: "x-seq", Value: "7"}}},
}

// BenchmarkNewReq builds the outbound PUBLISH of one record.
func BenchmarkNewReq(b *testing.B) {
	c := &Conn{}
	c.cfg.PublishTimeout = defaultPublishTimeout
	payload := []byte(`{"device":"d-1","temp":21.5}`)
	ctx := context.Background()
	for _, hc := range headerCases {
		b.Run(hc.name, func(b *testing.B) {
			env := &pipeline.Envelope{Payload: payload, Headers: hc.headers}
			opts := Out{QoS: 1}
			b.ReportAllocs()
			for b.Loop() {
				_ = c.newReq(ctx, "alerts/d-1", opts, env)
			}
		})
	}
}

// BenchmarkOnPublish maps one inbound QoS 0 PUBLISH to an envelope and
// dispatches it.
func BenchmarkOnPublish(b *testing.B) {
	for _, hc := range headerCases {
		b.Run(hc.name, func(b *testing.B) {
			c := &Conn{serving: make(chan struct{}), serveCtx: context.Background(), disp: nopDispatcher{}}
			c.ctx = context.Background()
			close(c.serving)
			p := &paho.Publish{Topic: "sensors/d-1/temp", Payload: []byte(`{"device":"d-1","temp":21.5}`)}
			for _, h := range hc.headers {
				if p.Properties == nil {
					p.Properties = &paho.PublishProperties{}
				}
				if h.Key == "content-type" {
					p.Properties.ContentType = h.Value
					continue
				}
				p.Properties.User = append(p.Properties.User, paho.UserProperty{Key: h.Key, Value: h.Value})
			}
			pr := paho.PublishReceived{Packet: p}
			b.ReportAllocs()
			for b.Loop() {
				_, _ = c.onPublish(pr)
			}
		})
	}
}
