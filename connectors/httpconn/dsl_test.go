package httpconn_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	httpconn "github.com/aimdb-dev/aimdb-flow/connectors/httpconn"
	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// The .flow form: settings and ${ENV} secrets reach the connector, an
// expression filter runs between ingest and webhook.
func TestDSLIngestToWebhook(t *testing.T) {
	got := make(chan *http.Request, 10)
	bodies := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- string(b)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	src := `
connector ingest "http://127.0.0.1:0" token "${TOK}" max_body "1KiB"
connector hooks "` + srv.URL + `" header_X_Api_Key "${KEY}" retries 2 timeout 2s

record sensor.temp {
  from "ingest:///ingest/sensor.temp" decode json
  buffer queue 16
}

pipeline alerts {
  from sensor.temp
  filter ` + "`temp > 25.0`" + `
  to "hooks://alerts/{device}" encode json method PUT
}
`
	env := map[string]string{"TOK": "t0k", "KEY": "k3y"}
	var ingest *httpconn.Builder
	g, err := dsl.Load(dsl.Options{
		Getenv: func(n string) (string, bool) { v, ok := env[n]; return v, ok },
		WrapConnector: func(name, _ string, b pipeline.Builder) pipeline.Builder {
			if name == "ingest" {
				ingest = b.(*httpconn.Builder)
			}
			return b
		},
	}, dsl.Source{Name: "alerts.flow", Src: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg := ingest.Config(); cfg.Token.Value() != "t0k" || cfg.MaxBody != 1024 {
		t.Fatalf("ingest config %+v", cfg)
	}
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for r.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("not ready")
		}
		time.Sleep(time.Millisecond)
	}
	url := "http://" + ingest.Addr().String() + "/ingest/sensor.temp"
	for _, body := range []string{`{"device":"d-1","temp":20}`, `{"device":"d-2","temp":30}`} {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer t0k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST = %s", resp.Status)
		}
	}
	select {
	case req := <-got:
		if req.Method != http.MethodPut || req.URL.Path != "/alerts/d-2" || req.Header.Get("X-Api-Key") != "k3y" {
			t.Fatalf("webhook %s %s key %q", req.Method, req.URL.Path, req.Header.Get("X-Api-Key"))
		}
		if b := <-bodies; !strings.Contains(b, `"temp":30`) {
			t.Fatalf("webhook body %s", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook request")
	}
}
