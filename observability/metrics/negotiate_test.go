package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/observability/metrics"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestContentNegotiation: a plain scrape gets the text format, a scraper
// asking for OpenMetrics gets OpenMetrics (counter families without the
// _total suffix in TYPE, samples with it, and the closing # EOF).
func TestContentNegotiation(t *testing.T) {
	lat := metrics.NewLatency(nil)
	r, err := pipeline.NewRunner(testGraph(mem.NewBus()), pipeline.RunOptions{Tracer: lat, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	info := &pipeline.HopInfo{Hop: pipeline.HopStage, Pipeline: "hot", Stage: "1:filter"}
	lat.StartHop(context.Background(), &pipeline.Envelope{}, info).End(nil)
	srv := httptest.NewServer(metrics.Handler(r, metrics.WithLatency(lat)))
	defer srv.Close()

	tests := []struct {
		name, accept, wantType string
		wantLines              []string
		eof                    bool
	}{
		{"plain", "", "text/plain; version=0.0.4", []string{
			"# TYPE aimdb_flow_record_writes_total counter",
			`aimdb_flow_record_writes_total{record="in"} 0`,
			"# TYPE aimdb_flow_hop_duration_seconds histogram",
		}, false},
		{"openmetrics", "application/openmetrics-text; version=1.0.0", "application/openmetrics-text; version=1.0.0", []string{
			"# TYPE aimdb_flow_record_writes counter",
			`aimdb_flow_record_writes_total{record="in"} 0.0`,
			"# TYPE aimdb_flow_hop_duration_seconds histogram",
			`aimdb_flow_hop_duration_seconds_count{hop="stage",link="",pipeline="hot",record="",stage="1:filter"} 1`,
		}, true},
		{"prometheus-accept", "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", "text/plain; version=0.0.4", []string{
			"# TYPE aimdb_flow_record_writes_total counter",
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			body := string(b)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
				t.Fatalf("Content-Type %q, want prefix %q", ct, tc.wantType)
			}
			lines := map[string]bool{}
			for _, l := range strings.Split(body, "\n") {
				lines[l] = true
			}
			for _, w := range tc.wantLines {
				if !lines[w] {
					t.Errorf("missing line %q in:\n%s", w, body)
				}
			}
			if got := strings.HasSuffix(body, "# EOF\n"); got != tc.eof {
				t.Errorf("ends in # EOF = %v, want %v", got, tc.eof)
			}
			if !tc.eof {
				parseExposition(t, strings.NewReader(body)) // the reference parser accepts it
			}
		})
	}
}

// TestScrapeWhileFlowing scrapes while records flow (run it under -race):
// every scrape parses and the pipeline counter never goes backwards.
func TestScrapeWhileFlowing(t *testing.T) {
	bus := mem.NewBus()
	alerts, unsub := bus.Subscribe("alerts/#", 1000)
	defer unsub()
	lat := metrics.NewLatency(nil)
	r, err := pipeline.NewRunner(testGraph(bus), pipeline.RunOptions{Tracer: lat, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(metrics.Handler(r, metrics.WithLatency(lat)))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitReady(t, srv.URL)

	const n = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range n {
			e := pipeline.Envelope{Payload: []byte(`{"device":"d","temp":30}`)}
			if err := bus.Publish(ctx, "src/x", &e); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	last := -1.0
	for got := 0; got < n; {
		_, body := get(t, srv.URL+"/metrics")
		s := parseExposition(t, strings.NewReader(body))
		v := s.get(t, "aimdb_flow_pipeline_in_total", "pipeline", "hot")
		if v < last {
			t.Fatalf("pipeline_in_total went back from %v to %v", last, v)
		}
		last = v
		checkHistograms(t, s)
		// Drain what arrived so far; block only for one record.
		<-alerts
		got++
		for drained := false; !drained && got < n; {
			select {
			case <-alerts:
				got++
			default:
				drained = true
			}
		}
	}
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitReady polls /readyz until the graph runs.
func waitReady(t *testing.T, url string) {
	t.Helper()
	for {
		code, _ := get(t, url+"/readyz")
		if code == http.StatusOK {
			return
		}
		if t.Context().Err() != nil {
			t.Fatal("/readyz never became 200")
		}
		runtime.Gosched()
	}
}
