package stages_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
)

func TestLogWritesValuesAsJSON(t *testing.T) {
	for _, c := range []struct {
		name string
		env  pipeline.Envelope
		want string
	}{
		{"decoded value", pipeline.Envelope{Topic: "t/1", Value: map[string]any{"temp": 30.5, "device": "d-1"}},
			`level=INFO msg=hot pipeline=p topic=t/1 value="{\"device\":\"d-1\",\"temp\":30.5}"`},
		{"payload only", pipeline.Envelope{Topic: "t/2", Payload: []byte("raw text")},
			`level=INFO msg=hot pipeline=p topic=t/2 payload="raw text"`},
		{"binary payload", pipeline.Envelope{Topic: "t/3", Payload: []byte{0xff, 0xfe, 0}},
			`level=INFO msg=hot pipeline=p topic=t/3 payload_bytes=3`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))
			passed := 0
			env := c.env
			err := stages.Log(log, "p", "hot").Process(context.Background(), &env, func(context.Context, *pipeline.Envelope) error {
				passed++
				return nil
			})
			if err != nil || passed != 1 {
				t.Fatalf("err %v, passed on %d times", err, passed)
			}
			if got := strings.TrimSpace(buf.String()); got != c.want {
				t.Errorf("log line\n got %s\nwant %s", got, c.want)
			}
		})
	}
}
