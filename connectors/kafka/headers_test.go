package kafka

import (
	"reflect"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	kafkago "github.com/segmentio/kafka-go"
)

// TestHeaderMapping: envelope headers become Kafka headers in order
// (repeated names kept, empty values too) and come back unchanged.
func TestHeaderMapping(t *testing.T) {
	tests := []struct {
		name string
		in   pipeline.Headers
		want []kafkago.Header
	}{
		{"none", nil, []kafkago.Header{}},
		{"in order, repeats kept", pipeline.Headers{{Key: "traceparent", Value: "00-ab-cd-01"}, {Key: "x", Value: "1"}, {Key: "x", Value: ""}, {Key: "content-type", Value: "application/json"}},
			[]kafkago.Header{{Key: "traceparent", Value: []byte("00-ab-cd-01")}, {Key: "x", Value: []byte("1")}, {Key: "x", Value: []byte{}}, {Key: "content-type", Value: []byte("application/json")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := kafkaHeaders(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("kafkaHeaders = %q, want %q", got, tc.want)
			}
			back := kit.FromPairs(got, 0, headerKV)
			if len(tc.in) == 0 && back != nil || len(tc.in) > 0 && !reflect.DeepEqual(back, tc.in) {
				t.Fatalf("back = %v, want %v", back, tc.in)
			}
			// Values do not share capacity: appending to one cannot
			// overwrite the next.
			if len(got) > 1 && cap(got[0].Value) != len(got[0].Value) {
				t.Fatalf("value capacity %d, want %d", cap(got[0].Value), len(got[0].Value))
			}
		})
	}
	hs := tests[1].in
	if n := testing.AllocsPerRun(100, func() { _ = kafkaHeaders(hs) }); n > 2 {
		t.Errorf("kafkaHeaders: %v allocations, want at most 2", n)
	}
}
