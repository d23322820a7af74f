package api

import (
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"sensor.temp", "sensor.temp", true},
		{"sensor.temp", "sensor.hum", false},
		{"sensor.*", "sensor.temp", true},
		{"sensor.*", "sensor", false},
		{"sensor.*", "sensor.temp.raw", false},
		{"sensor.**", "sensor", true},
		{"sensor.**", "sensor.temp.raw", true},
		{"sensor.**", "sensors.temp", false},
		{"*.temp", "room.temp", true},
		{"*.temp", "temp", false},
		{"**", "a.b.c", true},
		{"s*.t?mp", "sensor.temp", true},
		{"**.raw", "sensor.temp.raw", true},
		{"**.raw", "sensor.temp", false},
	}
	for _, tc := range tests {
		if err := checkPattern(tc.pattern); err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		if got := matchPattern(tc.pattern, tc.name); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
	for _, bad := range []string{"", "sensor.[", "a.[]"} {
		if checkPattern(bad) == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"mqtt://127.0.0.1:1883", "mqtt://127.0.0.1:1883"},
		{"gen://", "gen://"},
		{"embedded://", "embedded://"},
		{"mqtts://edge:hunter2@broker:8883", "mqtts://edge:REDACTED@broker:8883"},
		{"kafka://broker:9092?sasl_password=hunter2&group=g", "kafka://broker:9092?group=g&sasl_password=REDACTED"},
		{"http://h/?token=hunter2&apikey=hunter2#frag", "http://h/?apikey=REDACTED&token=REDACTED"},
		{"mqtt://user@broker", "mqtt://user@broker"},
		{"%zz://x", "REDACTED"},
	}
	for _, tc := range tests {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	hs := redactHeaders(pipeline.Headers{{Key: "Authorization", Value: "Bearer x"}, {Key: "traceparent", Value: "00-abc"}, {Key: "X-Api-Key", Value: "k"}})
	var b strings.Builder
	for _, h := range hs {
		b.WriteString(h.Key + "=" + h.Value + " ")
	}
	if got := b.String(); got != "Authorization=REDACTED traceparent=00-abc X-Api-Key=REDACTED " {
		t.Errorf("headers: %s", got)
	}
}

func TestTokenCheck(t *testing.T) {
	tc := newTokenCheck("s3cret")
	for _, x := range []struct {
		got  string
		want bool
	}{{"s3cret", true}, {"s3cre", false}, {"s3cretx", false}, {"", false}, {"S3CRET", false}} {
		if tc.ok(x.got) != x.want {
			t.Errorf("ok(%q) = %v", x.got, !x.want)
		}
	}
}
