package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/observability/api"
	"github.com/aimdb-dev/aimdb-flow/observability/metrics"
)

const token = "s3cret-token"

func TestListAndGet(t *testing.T) {
	in := start(t, testFlow, api.Options{})
	c := in.client("")
	ctx := context.Background()
	recs, err := c.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]api.Record{}
	var names []string
	for _, r := range recs {
		byName[r.Name] = r
		names = append(names, r.Name)
	}
	if got := strings.Join(names, " "); got != "sensor.temp sensor.hum sensor.temp.raw setpoint applied alerts" {
		t.Fatalf("records %s (want declaration order)", got)
	}
	tests := []struct {
		name, buffer, writer string
		capacity             int
		readers              string
		settable             bool
	}{
		{"sensor.temp", "ring", "link gen://temp", 64, "hot", false},
		{"sensor.hum", "latest", "link gen://hum", 0, "", false},
		{"setpoint", "queue", "set ", 16, "apply", true},
		{"applied", "ring", "pipeline apply", 16, "", false},
		{"alerts", "ring", "pipeline hot", 16, "", false},
	}
	for _, tc := range tests {
		r := byName[tc.name]
		var readers []string
		for _, rd := range r.Readers {
			readers = append(readers, rd.Name)
		}
		if r.Buffer.Kind != tc.buffer || r.Buffer.Capacity != tc.capacity || r.Writer.Kind+" "+r.Writer.Name != tc.writer ||
			strings.Join(readers, ",") != tc.readers || r.Settable != tc.settable {
			t.Errorf("%s: %+v", tc.name, r)
		}
	}
	// The generated records flow: their latest value, counters and last
	// update show it.
	var v api.Value
	eventually(t, "sensor.temp has a value", func() bool { v, err = c.Value(ctx, "sensor.temp"); return err == nil })
	var m map[string]any
	if err := json.Unmarshal(v.Value, &m); err != nil || m["device"] == nil || v.Record != "sensor.temp" || v.Time.IsZero() {
		t.Fatalf("value %+v (%s): %v", v, v.Value, err)
	}
	r, err := c.Record(ctx, "sensor.temp")
	if err != nil {
		t.Fatal(err)
	}
	if r.Writes == 0 || r.LastUpdate == nil {
		t.Errorf("sensor.temp after a value: %+v", r)
	}
	// Rates need two samples.
	in.srv.Sample(time.Now())
	in.srv.Sample(time.Now().Add(time.Second))
	if r, _ := c.Record(ctx, "sensor.temp"); r.Rates == nil {
		t.Errorf("no rates after two samples: %+v", r)
	}
	var se *api.StatusError
	if _, err := c.Record(ctx, "nope"); !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Errorf("unknown record: %v", err)
	}
	if _, err := c.Value(ctx, "applied"); !errors.As(err, &se) || se.Status != http.StatusNotFound || se.Code != "no_value" {
		t.Errorf("record without a value: %v", err)
	}
}

// Values set through the API reach the record, its readers and its
// watchers in order, and the latest value is the last set.
func TestSetAndWatch(t *testing.T) {
	in := start(t, testFlow, api.Options{Token: token})
	c := in.client(token)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opened := make(chan api.Hello, 1)
	got := make(chan api.Event, 10)
	watchErr := make(chan error, 1)
	go func() {
		n := 0
		watchErr <- c.Watch(ctx, []string{"setpoint", "applied"}, api.WatchOptions{OnHello: func(h api.Hello) { opened <- h }}, func(ev api.Event) error {
			got <- ev
			if n++; n == 6 {
				return api.ErrStop
			}
			return nil
		})
	}()
	var h api.Hello
	select {
	case h = <-opened:
	case err := <-watchErr:
		t.Fatal(err)
	}
	if strings.Join(h.Records, ",") != "setpoint,applied" || h.Buffer != api.DefaultWatchBuffer {
		t.Fatalf("hello %+v", h)
	}
	for i := 1; i <= 3; i++ {
		v, err := c.Set(ctx, "setpoint", json.RawMessage(fmt.Sprintf(`{"temp":%d}`, 20+i)))
		if err != nil {
			t.Fatal(err)
		}
		if string(v.Value) != fmt.Sprintf(`{"temp":%d}`, 20+i) {
			t.Errorf("set answered %s", v.Value)
		}
	}
	if err := <-watchErr; err != nil {
		t.Fatal(err)
	}
	close(got)
	var setp, appl []string
	var seqs []uint64
	for ev := range got {
		seqs = append(seqs, ev.Seq)
		switch ev.Record {
		case "setpoint":
			setp = append(setp, string(ev.Value.Value))
		case "applied":
			appl = append(appl, string(ev.Value.Value))
		}
		if ev.Dropped != 0 {
			t.Errorf("dropped %d", ev.Dropped)
		}
	}
	if strings.Join(setp, " ") != `{"temp":21} {"temp":22} {"temp":23}` {
		t.Errorf("setpoint events %v", setp)
	}
	if strings.Join(appl, " ") != `{"temp":21,"applied":true} {"temp":22,"applied":true} {"temp":23,"applied":true}` {
		t.Errorf("applied events %v (the pipeline reading the settable record)", appl)
	}
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("seqs %v", seqs)
	}
	v, err := c.Value(ctx, "setpoint")
	if err != nil || string(v.Value) != `{"temp":23}` {
		t.Errorf("latest %s, %v", v.Value, err)
	}
	// A JSON scalar is a value too.
	if _, err := c.Set(ctx, "setpoint", json.RawMessage(`21.5`)); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Value(ctx, "setpoint"); string(v.Value) != `21.5` {
		t.Errorf("scalar set: %s", v.Value)
	}
}

// A pattern watches every record it matches, one dotted level per *.
func TestPatternWatch(t *testing.T) {
	in := start(t, testFlow, api.Options{})
	c := in.client("")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var hello api.Hello
	seen := map[string]int{}
	err := c.Watch(ctx, []string{"sensor.*"}, api.WatchOptions{OnHello: func(h api.Hello) { hello = h }}, func(ev api.Event) error {
		seen[ev.Record]++
		if seen["sensor.temp"] >= 3 && seen["sensor.hum"] >= 3 {
			return api.ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(hello.Records, ",") != "sensor.temp,sensor.hum" {
		t.Errorf("sensor.* watches %v (not sensor.temp.raw: one level per *)", hello.Records)
	}
	if len(seen) != 2 {
		t.Errorf("events from %v", seen)
	}
	// ** spans levels.
	err = c.Watch(ctx, []string{"sensor.**"}, api.WatchOptions{OnHello: func(h api.Hello) { hello = h }}, func(api.Event) error { return api.ErrStop })
	if err != nil || strings.Join(hello.Records, ",") != "sensor.temp,sensor.hum,sensor.temp.raw" {
		t.Errorf("sensor.** watches %v: %v", hello.Records, err)
	}
	var se *api.StatusError
	if err := c.Watch(ctx, []string{"nothing.*"}, api.WatchOptions{}, nil); !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Errorf("pattern matching nothing: %v", err)
	}
	if err := c.Watch(ctx, []string{"sensor.["}, api.WatchOptions{}, nil); !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Errorf("malformed pattern: %v", err)
	}
}

func TestAuthAndLimits(t *testing.T) {
	withToken := start(t, testFlow, api.Options{Token: token, MaxBody: 64})
	noToken := start(t, testFlow, api.Options{})
	readOnly := start(t, testFlow, api.Options{Token: token, ReadOnly: true})
	big := `{"x":"` + strings.Repeat("a", 100) + `"}`
	tests := []struct {
		name        string
		in          *instance
		method      string
		path, token string
		body        string
		status      int
		code        string
	}{
		{"no token", withToken, "GET", "/api/v1/records", "", "", 401, "unauthorized"},
		{"wrong token", withToken, "GET", "/api/v1/records", "wrong", "", 401, "unauthorized"},
		{"token prefix", withToken, "GET", "/api/v1/records", token[:5], "", 401, "unauthorized"},
		{"right token", withToken, "GET", "/api/v1/records", token, "", 200, ""},
		{"watch needs the token", withToken, "GET", "/api/v1/watch?records=setpoint", "", "", 401, "unauthorized"},
		{"graph needs the token", withToken, "GET", "/api/v1/graph", "", "", 401, "unauthorized"},
		{"set without the token", withToken, "PUT", "/api/v1/records/setpoint/value", "", `1`, 401, "unauthorized"},
		{"set", withToken, "PUT", "/api/v1/records/setpoint/value", token, `1`, 200, ""},
		{"set by POST", withToken, "POST", "/api/v1/records/setpoint/value", token, `2`, 200, ""},
		{"set a record with a writer", withToken, "PUT", "/api/v1/records/sensor.temp/value", token, `1`, 403, "not_settable"},
		{"set a pipeline's record", withToken, "PUT", "/api/v1/records/alerts/value", token, `1`, 403, "not_settable"},
		{"set an unknown record", withToken, "PUT", "/api/v1/records/nope/value", token, `1`, 404, "not_found"},
		{"set not JSON", withToken, "PUT", "/api/v1/records/setpoint/value", token, `{oops`, 400, "bad_request"},
		{"set too large", withToken, "PUT", "/api/v1/records/setpoint/value", token, big, 413, "too_large"},
		{"unknown endpoint", withToken, "GET", "/api/v1/nope", token, "", 404, "not_found"},
		{"read open without a token", noToken, "GET", "/api/v1/records/setpoint", "", "", 200, ""},
		{"set needs a token even on loopback", noToken, "PUT", "/api/v1/records/setpoint/value", "", `1`, 403, "set_needs_token"},
		{"read-only", readOnly, "PUT", "/api/v1/records/setpoint/value", token, `1`, 403, "read_only"},
		{"read-only still reads", readOnly, "GET", "/api/v1/records", token, "", 200, ""},
		{"bad watch buffer", noToken, "GET", "/api/v1/watch?records=setpoint&buffer=0", "", "", 400, "bad_request"},
		{"watch without records", noToken, "GET", "/api/v1/watch", "", "", 400, "bad_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := do(t, tc.method, tc.in.base+tc.path, tc.token, tc.body)
			if status != tc.status {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, status, body, tc.status)
			}
			if tc.code != "" {
				var e api.Error
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != tc.code || e.Message == "" {
					t.Fatalf("body %s, want code %s", body, tc.code)
				}
			}
			if status == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: %v", hdr)
			}
			if strings.Contains(body, token) {
				t.Errorf("the token appears in the answer: %s", body)
			}
		})
	}
	// The not-settable answer says why.
	_, body, _ := do(t, "PUT", withToken.base+"/api/v1/records/alerts/value", token, `1`)
	if !strings.Contains(body, "written by pipeline hot") {
		t.Errorf("not settable: %s", body)
	}
}

func TestGraphRedactsAndCounts(t *testing.T) {
	lat := metrics.NewLatency(nil)
	in := start(t, testFlow, api.Options{Latency: lat,
		Endpoints: map[string]string{"gen": "gen://user:hunter2@localhost/?token=hunter3&rate=1"}})
	c := in.client("")
	ctx := context.Background()
	eventually(t, "pipeline hot has seen records", func() bool { return in.r.Stats().Pipelines["hot"].In > 10 })
	status, body, _ := do(t, "GET", in.base+"/api/v1/graph", "", "")
	if status != 200 {
		t.Fatalf("graph: %d %s", status, body)
	}
	for _, secret := range []string{"hunter2", "hunter3"} {
		if strings.Contains(body, secret) {
			t.Errorf("the graph shows a secret (%s): %s", secret, body)
		}
	}
	g, err := c.Graph(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Connectors) != 1 || g.Connectors[0].Name != "gen" || !g.Connectors[0].Ready ||
		g.Connectors[0].Endpoint != "gen://user:REDACTED@localhost/?rate=1&token=REDACTED" {
		t.Errorf("connectors %+v", g.Connectors)
	}
	if !g.Running || !g.Ready || len(g.Records) != 6 || len(g.Pipelines) != 2 {
		t.Errorf("graph %+v", g)
	}
	hot := g.Pipelines[0]
	if hot.Name != "hot" || hot.From != "sensor.temp" || hot.Into != "alerts" || hot.In == 0 || len(hot.Stages) != 1 ||
		hot.Stages[0].Name != "1:filter" || hot.Stages[0].In == 0 {
		t.Errorf("pipeline hot %+v", hot)
	}
	if hot.Stages[0].Timing == nil || hot.Stages[0].Timing.Count == 0 {
		t.Errorf("stage without timing under a latency recorder: %+v", hot.Stages[0])
	}
	var links []string
	for _, l := range g.Links {
		links = append(links, l.Direction+" "+l.Record+" "+l.Link)
		if l.Messages == 0 {
			t.Errorf("link %+v moved nothing", l)
		}
	}
	if strings.Join(links, ",") != "in sensor.temp gen://temp,in sensor.hum gen://hum" {
		t.Errorf("links %v", links)
	}
	tm, err := c.Timings(ctx)
	if err != nil || !tm.Enabled || len(tm.Hops) == 0 {
		t.Fatalf("timings %+v %v", tm, err)
	}
	hops := map[string]bool{}
	for _, h := range tm.Hops {
		hops[h.Hop] = true
		if h.Count == 0 || h.MeanSeconds <= 0 {
			t.Errorf("hop %+v", h)
		}
	}
	for _, h := range []string{"receive", "decode", "stage"} {
		if !hops[h] {
			t.Errorf("no %s timings: %+v", h, tm.Hops)
		}
	}
	// Without a recorder the timings say they are off.
	off := start(t, testFlow, api.Options{})
	if tm, err := off.client("").Timings(ctx); err != nil || tm.Enabled || len(tm.Hops) != 0 {
		t.Errorf("timings without a recorder: %+v %v", tm, err)
	}
}
