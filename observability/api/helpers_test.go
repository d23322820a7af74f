package api_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/observability/api"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// testFlow is a small generated graph: two sensor records fed by gen, a
// deeper record, a settable setpoint read by a pipeline, an alert record.
const testFlow = `
connector gen "gen://"

record sensor.temp {
  from "gen://temp" decode json rate 200 seed 1
      template ` + "`" + `{"device":"d-{{int 1 3}}","temp":{{float 15 40}},"seq":{{seq}}}` + "`" + `
  buffer ring 64
}
record sensor.hum {
  from "gen://hum" decode json rate 200 seed 2 template ` + "`" + `{"hum":{{float 20 80}}}` + "`" + `
  buffer latest
}
record sensor.temp.raw {
  settable
  buffer latest
}
record setpoint {
  settable
  buffer queue 16
}
record applied {
  buffer ring 16
}
record alerts {
  buffer ring 16
}

pipeline hot {
  from sensor.temp
  filter ` + "`temp > 30`" + `
  into alerts
}
pipeline apply {
  from setpoint
  set applied ` + "`true`" + `
  into applied
}
`

type instance struct {
	r    *pipeline.Runner
	base string
	srv  *api.Server
}

// start runs src on a real runner and serves its API on a loopback port;
// everything stops at the end of the test.
func start(t *testing.T, src string, opts api.Options) *instance {
	t.Helper()
	g, err := dsl.Load(dsl.Options{Embedded: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, dsl.Source{Name: "t.flow", Src: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	var tracer pipeline.Tracer
	if opts.Latency != nil {
		tracer = opts.Latency
	}
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Tracer: tracer, DrainTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	s := api.New(r, opts)
	base, cancelBase := context.WithCancel(context.Background())
	hs := httptest.NewUnstartedServer(s)
	hs.Config.BaseContext = func(net.Listener) context.Context { return base }
	hs.Start()
	t.Cleanup(func() {
		cancelBase()
		hs.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	eventually(t, "the graph runs", r.Running)
	return &instance{r: r, base: hs.URL, srv: s}
}

// eventually waits, up to 15 s, for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (in *instance) client(token string) *api.Client {
	return &api.Client{BaseURL: in.base, Token: token}
}

// do sends a request and returns the status and body.
func do(t *testing.T, method, url, token, body string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}
