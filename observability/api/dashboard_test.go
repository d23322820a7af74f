package api_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/observability/api"
	"github.com/aimdb-dev/aimdb-flow/tests/chromium"
)

// The dashboard in headless Chromium against the running demo pipeline
// (pipelines/demo.flow on its embedded broker): the graph is drawn with
// its records, pipelines and connectors, edges carry live rates, the
// records table and connector readiness fill in, and the followed record's
// values arrive and are charted. With a token the page reads it from its
// URL fragment. AIMDB_UPDATE_SCREENSHOT=1 writes docs/dashboard.png.
func TestDashboardInChromium(t *testing.T) {
	demo, err := os.ReadFile("../../pipelines/demo.flow")
	if err != nil {
		t.Fatal(err)
	}
	in := start(t, string(demo), api.Options{Token: "tok"})
	b := chromium.Start(t)
	p := b.Open(in.base + "/#token=tok&record=sensor.temp")
	p.WaitFor(`document.body.dataset.polls >= 3`, 30*time.Second)
	p.WaitFor(`document.body.dataset.values >= 5`, 30*time.Second)
	p.WaitFor(`document.querySelector("#chart").dataset.points >= 2`, 30*time.Second)
	p.WaitFor(`document.querySelector(".edge.live") !== null`, 30*time.Second)

	var nodes []string
	if err := p.Eval(`[...document.querySelectorAll("#svg .node")].map(n => n.dataset.id)`, &nodes); err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(nodes, " ")
	for _, want := range []string{"in:gen", "in:mqtt", "rec:readings", "rec:sensor.temp", "pipe:publish", "pipe:alerts", "out:mqtt", "out:stdio"} {
		if !strings.Contains(joined, want) {
			t.Errorf("graph nodes %v: no %s", nodes, want)
		}
	}
	var state, field, records string
	if err := p.Eval(`document.querySelector("#state").textContent`, &state); err != nil {
		t.Fatal(err)
	}
	if err := p.Eval(`document.querySelector("#field").textContent`, &field); err != nil {
		t.Fatal(err)
	}
	if err := p.Eval(`document.querySelector("#records tbody").textContent`, &records); err != nil {
		t.Fatal(err)
	}
	if state != "ready" || field == "" || !strings.Contains(records, "sensor.temp") || !strings.Contains(records, "readings") {
		t.Fatalf("state %q, charted field %q, records %q", state, field, records)
	}
	if os.Getenv("AIMDB_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile("../../docs/dashboard.png", p.Screenshot(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Without the token the page says so instead of showing data.
func TestDashboardAsksForToken(t *testing.T) {
	in := start(t, testFlow, api.Options{Token: "tok"})
	code, body, hdr := do(t, "GET", in.base+"/", "", "")
	if code != 200 || !strings.Contains(body, "<title>aimdb-flow</title>") || !strings.Contains(hdr.Get("Content-Security-Policy"), "connect-src 'self'") {
		t.Fatalf("GET / without a token: %d %.80s %v", code, body, hdr)
	}
	b := chromium.Start(t)
	p := b.Open(in.base + "/")
	p.WaitFor(`document.querySelector("#err").textContent.includes("needs a token")`, 30*time.Second)
	var polls string
	if err := p.Eval(`document.body.dataset.polls`, &polls); err != nil || polls != "0" {
		t.Fatalf("polls %q %v: data shown without a token", polls, err)
	}
}
