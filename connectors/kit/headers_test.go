package kit

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// userProperty stands for a protocol's header entry (paho.UserProperty,
// kafka.Header).
type userProperty struct {
	Key   string
	Value []byte
}

// hdrs builds headers from key, value pairs.
func hdrs(kv ...string) pipeline.Headers {
	var hs pipeline.Headers
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, pipeline.Header{Key: kv[i], Value: kv[i+1]})
	}
	return hs
}

func TestPairsRoundTrip(t *testing.T) {
	in := []userProperty{{"traceparent", []byte("00-ab-cd-01")}, {"x-a", []byte("1")}, {"x-a", []byte("2")}}
	hs := FromPairs(in, 1, func(p userProperty) (string, string) { return p.Key, string(p.Value) })
	if cap(hs) != 4 || len(hs) != 3 {
		t.Fatalf("len %d cap %d, want 3 and room for 1 more", len(hs), cap(hs))
	}
	hs = append(hs, pipeline.Header{Key: ContentTypeHeader, Value: "application/json"})
	want := hdrs("traceparent", "00-ab-cd-01", "x-a", "1", "x-a", "2", "content-type", "application/json")
	if !reflect.DeepEqual(hs, want) {
		t.Fatalf("FromPairs = %v", hs)
	}
	out := AppendPairs([]userProperty(nil), hs, IsContentType, func(k, v string) userProperty { return userProperty{k, []byte(v)} })
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("AppendPairs = %v, want %v (order kept, content-type left out)", out, in)
	}
	if got := AppendPairs([]userProperty(nil), hs, nil, func(k, v string) userProperty { return userProperty{k, []byte(v)} }); len(got) != 4 {
		t.Fatalf("nil skip keeps all: %v", got)
	}
	if FromPairs([]userProperty(nil), 0, func(p userProperty) (string, string) { return p.Key, "" }) != nil {
		t.Fatal("empty list: want nil headers")
	}
	if allocs := testing.AllocsPerRun(100, func() {
		_ = FromPairs(in, 1, func(p userProperty) (string, string) { return p.Key, "v" })
	}); allocs != 1 {
		t.Fatalf("FromPairs allocates %v times, want 1", allocs)
	}
}

func TestHeaderFilter(t *testing.T) {
	tests := []struct {
		patterns []string
		key      string
		want     bool
	}{
		{[]string{"traceparent"}, "Traceparent", true},
		{[]string{"x-*"}, "X-Request-Id", true},
		{[]string{"x-*"}, "accept", false},
		{[]string{"*"}, "anything", true},
		{[]string{" Accept "}, "accept", true},
		{nil, "traceparent", false},
	}
	for _, tc := range tests {
		if got := NewHeaderFilter(tc.patterns...).Allows(tc.key); got != tc.want {
			t.Errorf("%v allows %q = %v, want %v", tc.patterns, tc.key, got, tc.want)
		}
	}
}

func TestFromHTTP(t *testing.T) {
	h := http.Header{"Traceparent": {"tp"}, "X-A": {"1", "2"}, "Authorization": {"Bearer s"}, "Cookie": {"c"},
		"Connection": {"close"}, "Accept": {"*/*"}, "Content-Type": {"application/json"}}
	tests := []struct {
		allow []string
		want  string
	}{
		{[]string{"traceparent", "tracestate", "baggage", "content-type", "x-*"}, "content-type=application/json traceparent=tp x-a=1 x-a=2"},
		{[]string{}, ""},
		{[]string{"Accept"}, "accept=*/*"},
		{[]string{"*"}, "accept=*/* content-type=application/json traceparent=tp x-a=1 x-a=2"}, // never credentials or hop-by-hop
	}
	for _, tc := range tests {
		var parts []string
		for _, kv := range FromHTTP(h, NewHeaderFilter(tc.allow...)) {
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		if got := strings.Join(parts, " "); got != tc.want {
			t.Errorf("allow %v: got %q, want %q", tc.allow, got, tc.want)
		}
	}
}

func TestToHTTP(t *testing.T) {
	hs := hdrs("traceparent", "tp", "x-a", "1", "x-a", "2", "Content-Type", "text/csv",
		"authorization", "Bearer stolen", "host", "evil", "bad name", "v", "x-inject", "a\r\nX-Evil: 1")
	h := http.Header{}
	ct, ok := ToHTTP(h, hs)
	if !ok || ct != "text/csv" {
		t.Fatalf("content type %q %v", ct, ok)
	}
	want := http.Header{"Traceparent": {"tp"}, "X-A": {"1", "2"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("headers %v, want %v", h, want)
	}
	if _, ok := ToHTTP(http.Header{}, hdrs("x", "y")); ok {
		t.Fatal("content type reported without one")
	}
}

func TestHTTPTokensAndValues(t *testing.T) {
	for s, want := range map[string]bool{"POST": true, "X-Api-Key": true, "a~b": true, "": false, "a b": false, "a:b": false, "é": false} {
		if ValidHTTPToken(s) != want {
			t.Errorf("ValidHTTPToken(%q) != %v", s, want)
		}
	}
	for s, want := range map[string]bool{"text/plain; charset=utf-8": true, "a\tb": true, "": true, "a\r\nb": false, "a\x00": false, "a\x7f": false} {
		if ValidHTTPHeaderValue(s) != want {
			t.Errorf("ValidHTTPHeaderValue(%q) != %v", s, want)
		}
	}
}
