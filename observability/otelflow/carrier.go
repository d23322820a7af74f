package otelflow

import (
	"strings"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// HeaderCarrier adapts pipeline.Headers to propagation.TextMapCarrier, so
// any OpenTelemetry propagator reads and writes trace context in an
// envelope's headers. Those headers are what connectors map to MQTT 5 user
// properties, Kafka record headers and HTTP headers.
//
// Keys match case-insensitively (HTTP canonicalizes "traceparent" to
// "Traceparent"). Set never modifies the slice it was given in place: it
// builds a new one, because envelopes copied by value share their headers'
// backing array.
type HeaderCarrier struct {
	H *pipeline.Headers
}

// Get returns the first value stored under key, or "".
func (c HeaderCarrier) Get(key string) string {
	for _, kv := range *c.H {
		if strings.EqualFold(kv.Key, key) {
			return kv.Value
		}
	}
	return ""
}

// Set replaces every value stored under key (in any letter case) with one
// value, appending it if absent.
func (c HeaderCarrier) Set(key, value string) {
	old := *c.H
	out := make(pipeline.Headers, 0, len(old)+1)
	for _, kv := range old {
		if !strings.EqualFold(kv.Key, key) {
			out = append(out, kv)
		}
	}
	*c.H = append(out, pipeline.Header{Key: key, Value: value})
}

// Keys lists the header keys in order (repeated keys repeat).
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(*c.H))
	for _, kv := range *c.H {
		keys = append(keys, kv.Key)
	}
	return keys
}

// del removes every value stored under key (in any letter case).
func (c HeaderCarrier) del(key string) {
	old := *c.H
	out := make(pipeline.Headers, 0, len(old))
	for _, kv := range old {
		if !strings.EqualFold(kv.Key, key) {
			out = append(out, kv)
		}
	}
	*c.H = out
}
