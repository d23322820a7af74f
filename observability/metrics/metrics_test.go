package metrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/observability/metrics"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

func (s *scrape) get(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	ser := series{name: name, labels: map[string]string{}}
	for i := 0; i+1 < len(labels); i += 2 {
		ser.labels[labels[i]] = labels[i+1]
	}
	v, ok := s.samples[ser.key()]
	if !ok {
		t.Fatalf("no series %s", ser.key())
	}
	return v
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func testGraph(bus *mem.Bus) *pipeline.Graph {
	g := pipeline.New().Connector("", mem.New(bus))
	g.Record("in").From("mem://src/+", codec.JSON{})
	g.Pipeline("hot").From("in").Via(
		stages.FilterValue(func(m map[string]any) bool { t, _ := m["temp"].(float64); return t > 25 }),
		stages.Map(func(env *pipeline.Envelope) error {
			if m, _ := env.Value.(map[string]any); m["device"] == "bad" {
				return errors.New("bad device")
			}
			return nil
		}),
	).To("mem://alerts/{device}", codec.JSON{})
	g.DeadLetterTo("mem://dlq", codec.Raw{})
	return g
}

// TestMetricsEndpoints runs a real graph behind a real HTTP server and
// checks /metrics, /healthz and /readyz through a whole lifecycle.
func TestMetricsEndpoints(t *testing.T) {
	bus := mem.NewBus()
	alerts, unsubA := bus.Subscribe("alerts/#", 10)
	defer unsubA()
	dlq, unsubD := bus.Subscribe("dlq", 10)
	defer unsubD()
	lat := metrics.NewLatency(nil)
	r, err := pipeline.NewRunner(testGraph(bus), pipeline.RunOptions{Tracer: lat, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(metrics.Handler(r, metrics.WithLatency(lat)))
	defer srv.Close()

	if code, _ := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d before run, want 200 (alive)", code)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not running") {
		t.Fatalf("/readyz before run = %d %q, want 503 not running", code, body)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := get(t, srv.URL+"/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never became 200")
		}
		time.Sleep(5 * time.Millisecond)
	}

	for _, p := range []string{`{"device":"d-1","temp":30}`, `{"device":"d-2","temp":10}`, `{bad json`, `{"device":"bad","temp":40}`} {
		e := pipeline.Envelope{Payload: []byte(p)}
		if err := bus.Publish(ctx, "src/x", &e); err != nil {
			t.Fatal(err)
		}
	}
	e := pipeline.Envelope{Payload: []byte(`{}`)}
	_ = bus.Publish(ctx, "elsewhere", &e) // matches no subscription: never reaches the runner
	for _, ch := range []<-chan pipeline.Envelope{alerts, dlq, dlq} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("timed out waiting for outputs")
		}
	}
	// The dead letters are published after the counters moved; wait for
	// the pipeline counters to settle on what was sent.
	var s *scrape
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
			t.Fatalf("content type %q", ct)
		}
		s = parseExposition(t, resp.Body)
		resp.Body.Close()
		if s.get(t, "aimdb_flow_pipeline_in_total", "pipeline", "hot") == 3 && s.get(t, "aimdb_flow_dead_letters_total") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("counters did not settle")
		}
		time.Sleep(5 * time.Millisecond)
	}

	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"aimdb_flow_running", nil, 1},
		{"aimdb_flow_ready", nil, 1},
		{"aimdb_flow_connector_ready", []string{"connector", "mem", "scheme", "mem"}, 1},
		{"aimdb_flow_link_messages_total", []string{"owner", "in", "link", "mem://src/+", "direction", "in"}, 4},
		{"aimdb_flow_link_errors_total", []string{"owner", "in", "link", "mem://src/+", "direction", "in"}, 1},
		{"aimdb_flow_link_dead_lettered_total", []string{"owner", "in", "link", "mem://src/+", "direction", "in"}, 1},
		{"aimdb_flow_link_messages_total", []string{"owner", "hot", "link", "mem://alerts/{device}", "direction", "out"}, 1},
		{"aimdb_flow_record_writes_total", []string{"record", "in"}, 3},
		{"aimdb_flow_buffer_occupancy", []string{"record", "in"}, 0},
		{"aimdb_flow_buffer_capacity", []string{"record", "in", "kind", "queue"}, 1024},
		{"aimdb_flow_buffer_readers", []string{"record", "in"}, 1},
		{"aimdb_flow_pipeline_in_total", []string{"pipeline", "hot"}, 3},
		{"aimdb_flow_pipeline_out_total", []string{"pipeline", "hot"}, 1},
		{"aimdb_flow_pipeline_errors_total", []string{"pipeline", "hot"}, 1},
		{"aimdb_flow_stage_in_total", []string{"pipeline", "hot", "stage", "1:filter"}, 3},
		{"aimdb_flow_stage_out_total", []string{"pipeline", "hot", "stage", "1:filter"}, 2},
		{"aimdb_flow_stage_dropped_total", []string{"pipeline", "hot", "stage", "1:filter"}, 1},
		{"aimdb_flow_stage_errors_total", []string{"pipeline", "hot", "stage", "2:map"}, 1},
		{"aimdb_flow_stage_dropped_total", []string{"pipeline", "hot", "stage", "2:map"}, 0},
		{"aimdb_flow_dead_letters_total", nil, 2},
		{"aimdb_flow_unrouted_total", nil, 0},
		{"aimdb_flow_hop_duration_seconds_count", []string{"hop", "stage", "pipeline", "hot", "stage", "1:filter", "record", "", "link", ""}, 3},
		{"aimdb_flow_hop_duration_seconds_count", []string{"hop", "receive", "pipeline", "", "stage", "", "record", "", "link", ""}, 4},
		{"aimdb_flow_hop_duration_seconds_bucket", []string{"hop", "publish", "pipeline", "hot", "stage", "", "record", "in", "link", "mem://alerts/{device}", "le", "+Inf"}, 1},
	}
	for _, w := range want {
		if got := s.get(t, w.name, w.labels...); got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
	if s.types["aimdb_flow_hop_duration_seconds"] != "histogram" || s.types["aimdb_flow_link_messages_total"] != "counter" || s.types["aimdb_flow_buffer_occupancy"] != "gauge" {
		t.Errorf("types: %v", s.types)
	}
	checkHistograms(t, s)

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after stop = %d %q, want 503", code, body)
	}
	_, body := get(t, srv.URL+"/metrics")
	after := parseExposition(t, strings.NewReader(body))
	if after.get(t, "aimdb_flow_running") != 0 || after.get(t, "aimdb_flow_connector_ready", "connector", "mem", "scheme", "mem") != 0 {
		t.Errorf("after stop: running/connector_ready should be 0:\n%s", body)
	}
}

// checkHistograms verifies every histogram's buckets are cumulative and
// end in +Inf equal to _count.
func checkHistograms(t *testing.T, s *scrape) {
	t.Helper()
	type hist struct {
		les  []float64
		vals []float64
	}
	hs := map[string]*hist{}
	for _, ser := range s.order {
		if !strings.HasSuffix(ser.name, "_bucket") {
			continue
		}
		le := ser.labels["le"]
		base := series{name: strings.TrimSuffix(ser.name, "_bucket"), labels: map[string]string{}}
		for k, v := range ser.labels {
			if k != "le" {
				base.labels[k] = v
			}
		}
		h := hs[base.key()]
		if h == nil {
			h = &hist{}
			hs[base.key()] = h
		}
		f, err := strconv.ParseFloat(le, 64)
		if err != nil {
			t.Fatalf("bad le %q", le)
		}
		h.les = append(h.les, f)
		h.vals = append(h.vals, s.samples[ser.key()])
	}
	if len(hs) == 0 {
		t.Fatal("no histograms")
	}
	for k, h := range hs {
		for i := 1; i < len(h.les); i++ {
			if h.les[i] <= h.les[i-1] || h.vals[i] < h.vals[i-1] {
				t.Fatalf("%s: buckets not increasing/cumulative: %v %v", k, h.les, h.vals)
			}
		}
		if h.les[len(h.les)-1] != posInf {
			t.Fatalf("%s: last bucket is not +Inf", k)
		}
		name, rest, _ := strings.Cut(k, ",")
		if c := s.samples[name+"_count,"+rest]; c != h.vals[len(h.vals)-1] {
			t.Fatalf("%s: _count %v != +Inf bucket %v", k, c, h.vals[len(h.vals)-1])
		}
	}
}

var posInf, _ = strconv.ParseFloat("+Inf", 64)

var quiet = slog.New(slog.DiscardHandler)

func TestHandlerRoutes(t *testing.T) {
	r, err := pipeline.NewRunner(testGraph(mem.NewBus()), pipeline.RunOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(metrics.Handler(r))
	defer srv.Close()
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/healthz", http.StatusOK},
		{http.MethodHead, "/healthz", http.StatusOK},
		{http.MethodGet, "/metrics", http.StatusOK},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodGet, "/nope", http.StatusNotFound},
		{http.MethodGet, "/readyz", http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

// TestLabelEscaping: record, pipeline and link names are user input; the
// exposition must stay parseable whatever they contain.
func TestLabelEscaping(t *testing.T) {
	g := pipeline.New().Connector("", mem.New(nil))
	g.Record(`we"ird\rec`).From("mem://a/\"b\"", codec.JSON{})
	g.Pipeline("p").From(`we"ird\rec`).To("mem://out", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := metrics.Write(&b, r); err != nil {
		t.Fatal(err)
	}
	s := parseExposition(t, strings.NewReader(b.String()))
	if v := s.get(t, "aimdb_flow_record_writes_total", "record", `we"ird\rec`); v != 0 {
		t.Fatalf("writes = %v", v)
	}
	if v := s.get(t, "aimdb_flow_link_messages_total", "owner", `we"ird\rec`, "link", `mem://a/"b"`, "direction", "in"); v != 0 {
		t.Fatalf("link = %v", v)
	}
}

// TestMeasureEvery: with 1-in-4 measurement, 40 hops still count as 40.
func TestMeasureEvery(t *testing.T) {
	r, err := pipeline.NewRunner(testGraph(mem.NewBus()), pipeline.RunOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	lat := metrics.NewLatency(nil, metrics.MeasureEvery(4))
	info := &pipeline.HopInfo{Hop: pipeline.HopStage, Pipeline: "hot", Stage: "1:filter"}
	measured := 0
	for i := 0; i < 40; i++ {
		if s := lat.StartHop(context.Background(), &pipeline.Envelope{}, info); s != nil {
			measured++
			s.End(nil)
		}
	}
	if measured != 10 {
		t.Fatalf("measured %d hops of 40, want 10", measured)
	}
	var b strings.Builder
	if err := metrics.Write(&b, r, metrics.WithLatency(lat)); err != nil {
		t.Fatal(err)
	}
	s := parseExposition(t, strings.NewReader(b.String()))
	if c := s.get(t, "aimdb_flow_hop_duration_seconds_count", "hop", "stage", "pipeline", "hot", "stage", "1:filter", "record", "", "link", ""); c != 40 {
		t.Fatalf("_count = %v, want 40", c)
	}
	checkHistograms(t, s)
}
