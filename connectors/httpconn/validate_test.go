package httpconn_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/httpconn"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// Typed Go options go through the same checks as DSL settings, at
// validation, instead of silently becoming defaults.
func TestTypedOptionsAreValidated(t *testing.T) {
	tests := []struct {
		name string
		in   bool
		addr string
		opts any
		want string // "" = valid
	}{
		{"good out", false, "v1/alerts", &httpconn.Out{Method: "PUT", Header: http.Header{"X-Kind": {"alert"}}}, ""},
		{"good in", true, "/ingest", httpconn.In{Methods: []string{"POST", "PUT"}}, ""},
		{"in path defaults", true, "ingest", &httpconn.In{Path: "/ingest"}, ""},
		{"bad method", false, "v1", httpconn.Out{Method: "P UT"}, `Out.Method "P UT": not a valid upper-case HTTP method`},
		{"bad header", false, "v1", httpconn.Out{Header: http.Header{"X-A": {"a\nb"}}}, `Out.Header "X-A": invalid header`},
		{"bad content type", false, "v1", &httpconn.Out{ContentType: "a\x00"}, "Out.ContentType: invalid value"},
		{"fragment", false, "v1#x", httpconn.Out{}, "destination must not contain '#'"},
		{"wrong type out", false, "v1", httpconn.In{}, "outbound link options are httpconn.Out, not httpconn.In"},
		{"wrong type in", true, "/x", &httpconn.Out{}, "inbound link options are httpconn.In, not *httpconn.Out"},
		{"path mismatch", true, "/x", httpconn.In{Path: "/y"}, `In.Path "/y" is not the link's path "/x"`},
		{"lower-case method", true, "/x", httpconn.In{Methods: []string{"post"}}, `In.Methods: "post" is not a valid upper-case HTTP method`},
		{"bad path", true, "/a?b", httpconn.In{}, "must be a plain path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := httpconn.New("http://127.0.0.1:0", httpconn.Config{})
			if err != nil {
				t.Fatal(err)
			}
			g := pipeline.New().Connector("http", b)
			if tc.in {
				g.Record("r").From("http://"+tc.addr, codec.Raw{}, pipeline.Options(tc.opts))
			} else {
				g.Record("r").To("http://"+tc.addr, codec.Raw{}, pipeline.Options(tc.opts))
				g.Record("r").From("http:///src", codec.Raw{})
			}
			err = g.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
