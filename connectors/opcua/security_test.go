package opcua

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestSecurity connects with each security mode and identity to a server
// that accepts the client certificate and one user.
func TestSecurity(t *testing.T) {
	srv := startServer(t, "OPCUA_USER=flow", "OPCUA_PASSWORD=s3cret", "OPCUA_NO_ANON=1")
	dir := t.TempDir()
	tests := []struct {
		name       string
		cfg        Config
		wantNotRdy string // non-empty: never ready, readiness mentions it
	}{
		{name: "none user", cfg: Config{Username: "flow", Password: kit.NewSecret("s3cret")}},
		{name: "sign user generated cert", cfg: Config{Policy: PolicyBasic256Sha256, Mode: "Sign", Username: "flow", Password: kit.NewSecret("s3cret")}},
		{name: "encrypt user cert files", cfg: Config{Policy: PolicyBasic256Sha256, Mode: "SignAndEncrypt", Username: "flow", Password: kit.NewSecret("s3cret"),
			CertFile: filepath.Join(dir, "c.pem"), KeyFile: filepath.Join(dir, "k.pem")}},
		{name: "wrong password", cfg: Config{Username: "flow", Password: kit.NewSecret("nope")}, wantNotRdy: "Bad"},
		{name: "anonymous refused", cfg: Config{}, wantNotRdy: "Bad"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Endpoint = srv.url()
			tc.cfg.Backoff = pipeline.Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}
			c, err := New(tc.cfg).Build(context.Background(), pipeline.BuildEnv{Name: "opcua"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			conn := c.(*Conn)
			if tc.wantNotRdy == "" {
				waitReady(t, conn)
				if err := publish(t, conn, "ns=2;s=Machine/Count", nil, "7"); err != nil {
					t.Fatal(err)
				}
				srv.waitWrite("Machine/Count=7")
				return
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				err := conn.Ready()
				if err == nil {
					t.Fatal("ready, want refused")
				}
				if strings.Contains(err.Error(), tc.wantNotRdy) {
					t.Logf("not ready: %v", err)
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("readiness %v, want it to mention %q", err, tc.wantNotRdy)
				}
				time.Sleep(20 * time.Millisecond) // polling an observable condition
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "c.pem")); err != nil {
		t.Errorf("certificate not written on first run: %v", err)
	}
}
