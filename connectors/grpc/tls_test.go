package grpcconn_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	grpcconn "github.com/aimdb-dev/aimdb-flow/connectors/grpc"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/tests/flowrun"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// TestMTLSAndToken runs a grpcs server requiring client certificates and
// a bearer token; clients publish to it with and without them.
func TestMTLSAndToken(t *testing.T) {
	dir := t.TempDir()
	certs, err := mqtttest.GenerateCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	out := filepath.Join(dir, "out.jsonl")
	_, ctx := flowrun.Start(t, `connector edge "grpcs://`+addr+`" mode server token "s3cret" cert_file "`+certs.ServerCertFile+`" key_file "`+certs.ServerKeyFile+`" ca_file "`+certs.CAFile+`"
connector file "file://"
record readings { from "edge://readings" decode raw }
pipeline p {
  from readings
  to "file://`+out+`" encode raw
}
`, 10*time.Second)

	full := pipeline.Params{"token": "s3cret", "ca_file": certs.CAFile, "cert_file": certs.ClientCertFile, "key_file": certs.ClientKeyFile}
	without := func(k string) pipeline.Params {
		p := pipeline.Params{}
		for kk, v := range full {
			if kk != k {
				p[kk] = v
			}
		}
		return p
	}
	wrongToken := without("token")
	wrongToken["token"] = "guess"
	for _, tc := range []struct {
		name   string
		params pipeline.Params
		want   string // "" for success
	}{
		{"cert and token", full, ""},
		{"no token", without("token"), "Unauthenticated"},
		{"wrong token", wrongToken, "Unauthenticated"},
		{"no client certificate", without("cert_file"), "cert_file"},
		{"no certificate at all", pipeline.Params{"token": "s3cret", "ca_file": certs.CAFile}, "Unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := grpcconn.Factory("grpcs://"+addr, tc.params)
			if err == nil {
				var c pipeline.Connector
				if c, err = b.Build(ctx, pipeline.BuildEnv{Name: "up"}); err == nil {
					pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
					err = c.Publish(pctx, "readings", nil, &pipeline.Envelope{Payload: []byte(tc.name)})
					pcancel()
					_ = c.Close(ctx)
				}
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("publish: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("publish: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	b, _ := os.ReadFile(out)
	waitFor(t, "the authorised record", 10*time.Second, func() bool { b, _ = os.ReadFile(out); return len(b) > 0 })
	if got := string(b); got != "cert and token\n" {
		t.Fatalf("sink: %q", got)
	}
}
