package opcua

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name, endpoint string
		params         pipeline.Params
		want           []string // substrings of the error; none: valid
	}{
		{name: "plain", endpoint: "opc.tcp://h:4840"},
		{name: "secure", endpoint: "opc.tcp://h:4840/p", params: pipeline.Params{"security_policy": "Basic256Sha256", "security_mode": "Sign"}},
		{name: "wrong scheme", endpoint: "tcp://h:4840", want: []string{"want opc.tcp://"}},
		{name: "mode without policy", endpoint: "opc.tcp://h:1", params: pipeline.Params{"security_mode": "Sign"}, want: []string{"needs security_policy"}},
		{name: "all at once", endpoint: "opc.tcp://h:1", params: pipeline.Params{"security_policy": "Basic128", "dial_timout": "1s", "password": "x"},
			want: []string{"security_policy", `did you mean "dial_timeout"`, "password without username"}},
		{name: "cert without key", endpoint: "opc.tcp://h:1", params: pipeline.Params{"security_policy": "Basic256Sha256", "cert_file": "c.pem"}, want: []string{"go together"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(tc.endpoint, tc.params)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %v", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestToVariant(t *testing.T) {
	tests := []struct {
		typ, payload, want string // want: the value, or "!" + error text
	}{
		{"Double", `{"value": 1.5}`, "1.5"},
		{"Int32", `-7`, "-7"},
		{"Int32", `2147483648`, "!range of Int32"},
		{"Byte", `1.5`, "!whole number"},
		{"Boolean", `"yes"`, "!node is Boolean, value is a string"},
		{"String", `{"a":"h\u00e9"}`, `{"a":"h\u00e9"}`},
		{"String", `"plain"`, "plain"},
		{"String", `not json`, "not json"},
		{"Float", `1e300`, "!overflows Float"},
	}
	for _, tc := range tests {
		id, _ := typeByName(tc.typ)
		v, err := toVariant(id, []byte(tc.payload))
		switch {
		case strings.HasPrefix(tc.want, "!"):
			if err == nil || !strings.Contains(err.Error(), tc.want[1:]) {
				t.Errorf("%s %s: %v, want error %q", tc.typ, tc.payload, err, tc.want[1:])
			}
		case err != nil:
			t.Errorf("%s %s: %v", tc.typ, tc.payload, err)
		case fmtValue(v.Value()) != tc.want:
			t.Errorf("%s %s: %v, want %s", tc.typ, tc.payload, v.Value(), tc.want)
		}
	}
}

func fmtValue(v any) string  { return strings.TrimSpace(fmtSprint(v)) }
func fmtSprint(v any) string { return fmt.Sprint(v) }
