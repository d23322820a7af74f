package grpcconn_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/dsl"
)

// TestSettingsAtLoad checks that mistakes in connector and link settings
// are reported when the file loads, at the setting's position.
func TestSettingsAtLoad(t *testing.T) {
	for _, tc := range []struct {
		name, decl string
		want       []string
	}{
		{"mode", `connector g "grpc://127.0.0.1:1" mode serve`, []string{"g.flow:1:34", "mode", "want client or server"}},
		{"misspelt", `connector g "grpc://127.0.0.1:1" max_inflght 4`, []string{"g.flow:1:34", `did you mean "max_inflight"`}},
		{"range", `connector g "grpc://127.0.0.1:1" max_message 10`, []string{"g.flow:1:34", "max_message", "from 1KiB"}},
		{"duration", `connector g "grpc://127.0.0.1:1" keepalive_time soon`, []string{"keepalive_time"}},
		{"tls without grpcs", `connector g "grpc://127.0.0.1:1" ca_file "x.pem"`, []string{"grpcs://"}},
		{"no port", `connector g "grpc://127.0.0.1"`, []string{"want host:port"}},
		{"server with two addresses", `connector g "grpc://127.0.0.1:1,127.0.0.1:2" mode server`, []string{"one address"}},
		{"server without certificate", `connector g "grpcs://127.0.0.1:0" mode server`, []string{"cert_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "g.flow")
			src := tc.decl + "\nconnector file \"file://\"\nrecord r { from \"g://t\" decode raw }\npipeline p {\n  from r\n  to \"file:///dev/null\" encode raw\n}\n"
			if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := dsl.LoadFiles(dsl.Options{}, f)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
