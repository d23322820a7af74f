package flowbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPipelineFiles drives every pipeline file of the repository and
// checks the counts (never the timings): every generated source produced
// exactly the requested records, every record received them, and the
// report lists every pipeline and sink.
func TestPipelineFiles(t *testing.T) {
	files, err := filepath.Glob("../../pipelines/*.flow")
	if err != nil || len(files) == 0 {
		t.Fatalf("no pipeline files: %v", err)
	}
	const n = 300
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// ${NAME}s come from the file's pipeline test, if it has one.
			env := suiteEnv(t, strings.TrimSuffix(f, ".flow")+".test.json")
			getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			rep, err := Run(ctx, Options{Records: n, Getenv: getenv}, f)
			if err != nil {
				t.Fatal(err)
			}
			if rep.TimedOut {
				t.Fatal("timed out")
			}
			if len(rep.Sources) == 0 {
				t.Skip("no inbound link to drive")
			}
			if len(rep.Pipelines) == 0 {
				t.Fatalf("no pipelines in the report: %+v", rep)
			}
			generated := 0
			for _, s := range rep.Sources {
				if s.Loopback {
					continue
				}
				generated++
				if s.Generated != n || s.Messages != n {
					t.Errorf("source %s: generated %d, received %d, want %d", s.Link, s.Generated, s.Messages, n)
				}
			}
			if generated == 0 {
				t.Error("no source was driven")
			}
			// What loops back arrives: every looped-back publish reaches the
			// loopback source (demo.flow: readings -> mqtt -> sensor.temp).
			var looped, received uint64
			for _, s := range rep.Sinks {
				if s.Loopback {
					looped += s.Messages
				}
			}
			for _, s := range rep.Sources {
				if s.Loopback {
					received += s.Messages
				}
			}
			if looped != received {
				t.Errorf("looped back %d messages, loopback sources received %d", looped, received)
			}
			var text bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			for _, p := range rep.Pipelines {
				if !strings.Contains(text.String(), p.Name) {
					t.Errorf("text report lacks pipeline %s", p.Name)
				}
			}
			if _, err := json.Marshal(rep); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// suiteEnv returns the "env" of a pipeline test file (nil if none).
func suiteEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Env map[string]string `json:"env"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s.Env
}

// TestW1Counts checks the figures of pipelines/w1.flow against the
// filter: every record is read, the hot ones reach the sink, each
// stage's counts add up, and latencies were recorded for each record.
func TestW1Counts(t *testing.T) {
	const n = 1000
	rep, err := Run(context.Background(), Options{Records: n,
		Template: `{"device":"d-1","temp":{{int 1 1}}0.0,"seq":{{seq}}}`}, "../../pipelines/w1.flow")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Pipelines) != 1 || len(rep.Sinks) != 1 {
		t.Fatalf("pipelines %d, sinks %d; want 1, 1", len(rep.Pipelines), len(rep.Sinks))
	}
	p := rep.Pipelines[0]
	if p.In != n || len(p.Stages) != 2 || p.Stages[0].In != n {
		t.Fatalf("pipeline %+v", p)
	}
	// temp is always 10.0: nothing passes.
	if p.Out != 0 || p.Stages[1].In != 0 || rep.Sinks[0].Messages != 0 {
		t.Errorf("cold readings passed the filter: out %d, set %d, sink %d", p.Out, p.Stages[1].In, rep.Sinks[0].Messages)
	}
	if got := p.Stages[0].Latency.Count; got != n {
		t.Errorf("filter latency samples %d, want %d", got, n)
	}

	rep, err = Run(context.Background(), Options{Records: n, Rate: 0,
		Template: `{"device":"d-1","temp":{{int 26 26}}.5,"seq":{{seq}}}`}, "../../pipelines/w1.flow")
	if err != nil {
		t.Fatal(err)
	}
	p, s := rep.Pipelines[0], rep.Sinks[0]
	if p.Out != n || p.Stages[1].In != n || s.Messages != n {
		t.Errorf("hot readings: out %d, set %d, sink %d; want %d", p.Out, p.Stages[1].In, s.Messages, n)
	}
	if s.EndToEnd.Count != n || s.Publish.Count != n {
		t.Errorf("latency samples: end-to-end %d, publish %d; want %d", s.EndToEnd.Count, s.Publish.Count, n)
	}
	if !(s.EndToEnd.P50 <= s.EndToEnd.P99 && s.EndToEnd.P99 <= s.EndToEnd.Max && s.EndToEnd.Max > 0) {
		t.Errorf("end-to-end percentiles out of order: %+v", s.EndToEnd)
	}
}

func TestRateAndErrors(t *testing.T) {
	if _, err := Run(context.Background(), Options{Rate: -1}, "../../pipelines/w1.flow"); err == nil {
		t.Error("negative rate: no error")
	}
	if _, err := Run(context.Background(), Options{Template: "{{nope}}"}, "../../pipelines/w1.flow"); err == nil {
		t.Error("bad template: no error")
	}
	if _, err := Run(context.Background(), Options{}, "testdata/missing.flow"); err == nil {
		t.Error("missing file: no error")
	}
}

func TestHistogram(t *testing.T) {
	tests := []struct {
		name          string
		values        []time.Duration
		p50, p99, max time.Duration
	}{
		{"single", []time.Duration{1000}, 1000, 1000, 1000},
		{"small exact", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 5, 10, 10},
		{"spread", spread(1000), 500 * time.Microsecond, 990 * time.Microsecond, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h hist
			for _, v := range tt.values {
				h.observe(v)
			}
			d := h.dist()
			if d.Count != uint64(len(tt.values)) || d.Max != tt.max {
				t.Fatalf("count %d max %v; want %d %v", d.Count, d.Max, len(tt.values), tt.max)
			}
			within := func(got, want time.Duration) bool {
				return float64(got) >= 0.93*float64(want) && float64(got) <= 1.07*float64(want)
			}
			if !within(d.P50, tt.p50) || !within(d.P99, tt.p99) {
				t.Errorf("p50 %v p99 %v; want %v %v (±7%%)", d.P50, d.P99, tt.p50, tt.p99)
			}
		})
	}
}

func spread(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Microsecond
	}
	return out
}

func TestBuckets(t *testing.T) {
	prev := -1
	for _, ns := range []uint64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 1 << 20, 1<<40 + 12345} {
		i := bucketOf(ns)
		if i < prev {
			t.Errorf("bucketOf(%d) = %d, below the previous %d", ns, i, prev)
		}
		if lo, hi := lowerBound(i), lowerBound(i+1); ns < lo || ns >= hi {
			t.Errorf("%d not in bucket %d [%d, %d)", ns, i, lo, hi)
		}
		prev = i
	}
}

func TestTopics(t *testing.T) {
	for _, c := range []struct {
		fn       func(string) string
		in, want string
	}{
		{concrete, "sensors/+/temp", "sensors/bench/temp"},
		{concrete, "$share/g/a/#", "a/bench"},
		{concrete, "device-commands", "device-commands"},
		{fillPlaceholders, "devices/{device}/commands", "devices/bench/commands"},
		{fillPlaceholders, "{a}/{b}", "bench/bench"},
		{fillPlaceholders, "plain", "plain"},
	} {
		if got := c.fn(c.in); got != c.want {
			t.Errorf("%q -> %q, want %q", c.in, got, c.want)
		}
	}
}
