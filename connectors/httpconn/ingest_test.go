package httpconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// post sends a request to the ingest server and returns status and body.
func post(t *testing.T, url, body string, hdr map[string]string) (int, string) {
	t.Helper()
	return do(t, http.MethodPost, url, body, hdr)
}

func do(t *testing.T, method, url, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ingestURL(b *Builder, path string) string { return "http://" + b.Addr().String() + path }

// HTTP ingest -> filter -> webhook: 202 per request, only hot readings
// reach the webhook server, and the trace context and X- headers of the
// ingest request travel with the record to the webhook request.
func TestIngestFilterWebhook(t *testing.T) {
	srv := newHookServer(t, nil)
	ingest := mustBuilder(t, "http://127.0.0.1:0", Config{KeyHeader: "X-Device"})
	g := pipeline.New().
		Connector("ingest", ingest).
		Connector("hooks", mustBuilder(t, srv.URL, Config{KeyHeader: "X-Key"}))
	g.Record("sensor.temp").From("ingest:///ingest/sensor.temp", codec.JSON{})
	g.Pipeline("alerts").From("sensor.temp").Via(stages.FilterValue(hot)).To("hooks://alerts/{device}", codec.JSON{})
	start(t, g)

	url := ingestURL(ingest, "/ingest/sensor.temp")
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, body := range []string{`{"device":"d-1","temp":31.5}`, `{"device":"d-2","temp":12}`, `{"device":"d-3","temp":26}`} {
		dev := body[11:14]
		code, resp := post(t, url, body, map[string]string{"traceparent": tp, "X-Device": dev, "X-Site": "north", "Cookie": "a=b"})
		if code != http.StatusAccepted || !strings.Contains(resp, "accepted") {
			t.Fatalf("POST = %d %s, want 202", code, resp)
		}
	}
	h := srv.next(t)
	if h.Path != "/alerts/d-1" || h.Header.Get("Traceparent") != tp || h.Header.Get("X-Site") != "north" ||
		h.Header.Get("X-Key") != "d-1" || h.Header.Get("Cookie") != "" {
		t.Fatalf("webhook request %s with headers %v", h.Path, h.Header)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(h.Body), &v); err != nil || v["temp"] != 31.5 {
		t.Fatalf("webhook body %q: %v", h.Body, err)
	}
	if h := srv.next(t); h.Path != "/alerts/d-3" {
		t.Fatalf("second webhook %s, want /alerts/d-3 (d-2 is filtered)", h.Path)
	}
}

// Bad requests get precise statuses and never reach a record.
func TestIngestRejects(t *testing.T) {
	bus := mem.NewBus()
	ingest := mustBuilder(t, "http://127.0.0.1:0", Config{Token: kit.NewSecret("t0ken"), MaxBody: 64})
	g := pipeline.New().Connector("ingest", ingest).Connector("", mem.New(bus))
	g.Record("a").From("ingest:///ingest/a", codec.JSON{}, pipeline.WithParams(pipeline.Params{"methods": "POST, PUT"})).
		To("mem://out/a", codec.JSON{})
	g.Record("b").From("ingest://raw/b", codec.Raw{}).To("mem://out/b", codec.Raw{})
	out, cancelOut := bus.Subscribe("out/#", 100)
	defer cancelOut()
	start(t, g)

	auth := map[string]string{"Authorization": "Bearer t0ken"}
	cases := []struct {
		name, method, path, body string
		hdr                      map[string]string
		code                     int
	}{
		{"no token", "POST", "/ingest/a", `{}`, nil, 401},
		{"wrong token", "POST", "/ingest/a", `{}`, map[string]string{"Authorization": "Bearer t0kem"}, 401},
		{"basic auth", "POST", "/ingest/a", `{}`, map[string]string{"Authorization": "Basic dDBrZW4="}, 401},
		{"unknown path", "POST", "/ingest/c", `{}`, auth, 404},
		{"prefix is not a match", "POST", "/ingest/a/x", `{}`, auth, 404},
		{"wrong method", "GET", "/ingest/a", ``, auth, 405},
		{"too large", "POST", "/ingest/a", `{"pad":"` + strings.Repeat("x", 100) + `"}`, auth, 413},
		{"invalid json", "POST", "/ingest/a", `{"temp":`, auth, 400},
		{"invalid json, no content type", "POST", "/ingest/a", `{"temp":`, map[string]string{"Authorization": "Bearer t0ken", "Content-Type": ""}, 400},
		{"invalid json sent as text", "POST", "/ingest/a", `not json`, map[string]string{"Authorization": "Bearer t0ken", "Content-Type": "text/plain"}, 400},
		{"compressed", "POST", "/ingest/a", `{}`, map[string]string{"Authorization": "Bearer t0ken", "Content-Encoding": "gzip"}, 415},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, tc.method, ingestURL(ingest, tc.path), tc.body, tc.hdr)
			if code != tc.code {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, code, body, tc.code)
			}
		})
	}
	// A chunked body (no Content-Length) over the limit is cut off too.
	req, _ := http.NewRequest("POST", ingestURL(ingest, "/ingest/a"), io.MultiReader(strings.NewReader(`{"pad":"`), strings.NewReader(strings.Repeat("y", 200)+`"}`)))
	req.Header.Set("Authorization", "Bearer t0ken")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 || req.ContentLength != 0 {
		t.Fatalf("chunked oversize body: %d (content length %d), want 413", resp.StatusCode, req.ContentLength)
	}

	// Valid requests pass: PUT is allowed on a, raw text on b.
	if code, body := do(t, "PUT", ingestURL(ingest, "/ingest/a"), `{"ok":1}`, auth); code != 202 {
		t.Fatalf("PUT = %d %s", code, body)
	}
	rawReq, _ := http.NewRequest("POST", ingestURL(ingest, "/raw/b"), strings.NewReader("plain text"))
	rawReq.Header.Set("Authorization", "Bearer t0ken")
	rawReq.Header.Set("Content-Type", "text/plain")
	resp, err = http.DefaultClient.Do(rawReq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("raw POST = %d", resp.StatusCode)
	}
	got := map[string]string{}
	for i := 0; i < 2; i++ {
		e := recvEnv(t, out)
		got[e.Topic] = string(e.Payload)
	}
	if got["out/a"] != `{"ok":1}` || got["out/b"] != "plain text" {
		t.Fatalf("delivered %v", got)
	}
	if st := ingest.Stats(); st.Accepted != 2 || st.Rejected != uint64(len(cases))+1 || st.Busy != 0 {
		t.Fatalf("stats %+v", st)
	}
	select {
	case e := <-out:
		t.Fatalf("a rejected request was delivered: %s %s", e.Topic, e.Payload)
	default:
	}
}

// A full queue buffer refuses a request with 503 within accept_timeout;
// accepted requests are all delivered once the sink recovers.
func TestIngestBackpressure503(t *testing.T) {
	gate := make(chan struct{})
	srv := newHookServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		<-gate
		w.WriteHeader(http.StatusOK)
	})
	ingest := mustBuilder(t, "http://127.0.0.1:0", Config{AcceptTimeout: 100 * time.Millisecond})
	g := pipeline.New().Connector("ingest", ingest).Connector("hooks", mustBuilder(t, srv.URL, Config{}))
	g.Record("r").WithBuffer(buffer.Config{Kind: buffer.Queue, Size: 1}).From("ingest:///r", codec.JSON{})
	g.Pipeline("p").From("r").To("hooks://sink", codec.JSON{})
	rn := start(t, g)
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release) // runs first: unblocks the server if the test fails
	url := ingestURL(ingest, "/r")

	if code, _ := post(t, url, `{"n":1}`, nil); code != 202 {
		t.Fatalf("first POST = %d", code)
	}
	srv.next(t) // n=1 is at the (blocked) sink; the queue is empty again
	if code, _ := post(t, url, `{"n":2}`, nil); code != 202 {
		t.Fatalf("second POST = %d (fills the queue)", code)
	}
	code, body := post(t, url, `{"n":3}`, nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "backpressure") {
		t.Fatalf("third POST = %d %s, want 503 backpressure", code, body)
	}
	release()
	if h := srv.next(t); h.Body != `{"n":2}` {
		t.Fatalf("second delivery %q", h.Body)
	}
	rn.stop(t)
	if n := srv.count(); n != 2 {
		t.Fatalf("webhook saw %d records, want 2 (the refused one was not taken)", n)
	}
	if st := ingest.Stats(); st.Accepted != 2 || st.Busy != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// wait ack: 200 only after the webhook confirmed; 502 when the sink
// finally rejects and no dead-letter destination takes the record.
func TestIngestWaitAck(t *testing.T) {
	srv := newHookServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "bad") {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	ingest := mustBuilder(t, "http://127.0.0.1:0", Config{Wait: WaitAck})
	g := pipeline.New().Connector("ingest", ingest).Connector("hooks", mustBuilder(t, srv.URL, Config{}))
	g.Record("r").From("ingest:///r", codec.JSON{})
	g.Pipeline("p").From("r").Via(stages.FilterValue(func(m map[string]any) bool { return m["drop"] != true })).
		To("hooks://{kind}", codec.JSON{})
	start(t, g)
	url := ingestURL(ingest, "/r")

	code, body := post(t, url, `{"kind":"good"}`, nil)
	if code != http.StatusOK || !strings.Contains(body, "delivered") {
		t.Fatalf("good = %d %s, want 200", code, body)
	}
	if n := srv.count(); n != 1 {
		t.Fatalf("200 came before the webhook saw the record (count %d)", n)
	}
	if code, body := post(t, url, `{"kind":"bad"}`, nil); code != http.StatusBadGateway {
		t.Fatalf("bad = %d %s, want 502", code, body)
	}
	// A record the pipeline filters out is done (acknowledged) at once.
	if code, body := post(t, url, `{"kind":"x","drop":true}`, nil); code != http.StatusOK {
		t.Fatalf("filtered = %d %s, want 200", code, body)
	}
}

// Cancelling the run shuts the ingest server down: Run returns nil and
// the port is closed. A port in use fails the run at once.
func TestIngestShutdownAndPortInUse(t *testing.T) {
	ingest := mustBuilder(t, "http://127.0.0.1:0", Config{})
	g := pipeline.New().Connector("ingest", ingest).Connector("", mem.New(nil))
	g.Record("r").From("ingest:///r", codec.JSON{}).To("mem://x", codec.JSON{})
	rn := start(t, g)
	addr := ingest.Addr().String()
	if code, _ := post(t, "http://"+addr+"/r", `{}`, nil); code != 202 {
		t.Fatalf("POST = %d", code)
	}

	// Same address again while the first is serving.
	busy := mustBuilder(t, "http://"+addr, Config{})
	g2 := pipeline.New().Connector("ingest", busy).Connector("", mem.New(nil))
	g2.Record("r").From("ingest:///r", codec.JSON{}).To("mem://x", codec.JSON{})
	r2, err := pipeline.NewRunner(g2, pipeline.RunOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r2.Run(ctx); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("second run on a busy port: %v", err)
	}

	rn.stop(t)
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		t.Fatal("ingest port still open after shutdown")
	}
}

// https ingest without a certificate is a build error; https with a cert
// serves TLS.
func TestIngestHTTPSNeedsCert(t *testing.T) {
	b := mustBuilder(t, "https://127.0.0.1:0", Config{})
	_, err := b.Build(context.Background(), pipeline.BuildEnv{Logger: testLogger(t),
		Inbound: []pipeline.Subscription{{Filter: "/x", Record: "x"}}})
	if err == nil || !strings.Contains(err.Error(), "cert_file") {
		t.Fatalf("err = %v", err)
	}
}

func TestForwardHeaders(t *testing.T) {
	h := http.Header{"Traceparent": {"tp"}, "X-A": {"1", "2"}, "Authorization": {"Bearer s"}, "Accept": {"*/*"}, "Content-Type": {"application/json"}}
	cases := []struct {
		allow []string
		want  string
	}{
		{nil, "content-type=application/json traceparent=tp x-a=1 x-a=2"},
		{[]string{}, ""},
		{[]string{"Accept"}, "accept=*/*"},
		{[]string{"*"}, "accept=*/* content-type=application/json traceparent=tp x-a=1 x-a=2"},
	}
	for _, tc := range cases {
		cfg := Config{ForwardHeaders: tc.allow}
		cfg.setDefaults()
		var parts []string
		for _, kv := range kit.FromHTTP(h, kit.NewHeaderFilter(cfg.ForwardHeaders...)) {
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		if got := strings.Join(parts, " "); got != tc.want {
			t.Errorf("allow %v: got %q, want %q", tc.allow, got, tc.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig(pipeline.Params{
		"method": "put", "timeout": "2s", "retries": "5", "backoff": "10ms", "backoff_max": "1s",
		"max_concurrency": "4", "header_X_Api_Key": "k", "content_type": "text/plain", "key_header": "X-Key",
		"token": "t", "max_body": "512KiB", "wait": "ack", "accept_timeout": "250ms", "forward_headers": "traceparent, x-*",
		"envelope_headers": "false",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Method != "PUT" || cfg.Timeout != 2*time.Second || cfg.Retries != 5 || cfg.Backoff.Min != 10*time.Millisecond ||
		cfg.Backoff.Max != time.Second || cfg.MaxConcurrency != 4 || cfg.Header.Get("X-Api-Key") != "k" ||
		cfg.ContentType != "text/plain" || cfg.KeyHeader != "X-Key" || cfg.Token.Value() != "t" || cfg.MaxBody != 512<<10 ||
		cfg.Wait != WaitAck || cfg.AcceptTimeout != 250*time.Millisecond || !cfg.NoEnvelopeHeaders ||
		strings.Join(cfg.ForwardHeaders, ",") != "traceparent,x-*" {
		t.Fatalf("cfg = %+v", cfg)
	}
	if c, err := ParseConfig(pipeline.Params{"retries": "0"}); err != nil || !c.NoRetry {
		t.Fatalf("retries 0: %+v %v", c, err)
	}
	// The TLS settings are the kit's: insecure (the documented spelling) and
	// insecure_skip_verify are one setting; server_name and tls_min_version
	// are new.
	c, err := ParseConfig(pipeline.Params{"ca_file": "/ca.pem", "insecure": "true", "server_name": "hooks.internal", "tls_min_version": "1.3"})
	if err != nil || c.TLS.CAFile != "/ca.pem" || !c.TLS.InsecureSkipVerify || c.TLS.ServerName != "hooks.internal" || c.TLS.MinVersion != tls.VersionTLS13 {
		t.Fatalf("TLS settings: %+v %v", c.TLS, err)
	}
	if _, err := Factory("https://127.0.0.1:1", pipeline.Params{"cert_file": "/c.pem"}); err == nil ||
		err.Error() != `cert_file "/c.pem": needs key_file (the certificate's private key) as well` {
		t.Fatalf("cert without key: %v", err)
	}

	// Every mistake at once, each naming its setting (kit grammar).
	_, err = ParseConfig(pipeline.Params{"timeout": "soon", "max_body": "1XB", "wait": "never", "colour": "red", "max_concurrency": "0",
		"retries": "30", "timout": "1s", "header_X_Bad": "a\r\nInjected: 1", "bearer": "s3cret\n"})
	want := []string{
		`timeout "soon": want a duration like 500ms, 2s or 1m30s`,
		`max_concurrency "0": want a whole number of at least 1`,
		`header_X_Bad: invalid value (control characters)`,
		`bearer: invalid characters`,
		`max_body "1XB": unknown unit "XB" (units: B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)`,
		`wait "never": want accept or ack`,
		`colour: unknown setting (known: method, timeout, retries, backoff, backoff_max, max_retry_after, max_concurrency, header_<Name>, bearer, content_type, key_header, envelope_headers, ca_file, cert_file, key_file, insecure_skip_verify, insecure, server_name, tls_min_version, token, max_body, wait, accept_timeout, ack_timeout, shutdown_timeout, forward_headers)`,
		`timout: unknown setting (did you mean "timeout"?)`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	if strings.Contains(fmt.Sprint(err), "s3cret") || strings.Contains(fmt.Sprint(err), "Injected") {
		t.Errorf("error shows a secret value: %v", err)
	}
	if _, err := Factory("ftp://x", nil); err == nil {
		t.Error("ftp endpoint accepted")
	}
	if _, err := Factory("http://x", pipeline.Params{"header_X_Bad": "a\r\nInjected: 1"}); err == nil {
		t.Error("header injection accepted")
	}
}

// Link options are validated when the graph is, with every mistake named.
func TestLinkOptionsValidated(t *testing.T) {
	g := pipeline.New().Connector("ingest", mustBuilder(t, "http://127.0.0.1:0", Config{}))
	g.Record("a").From("ingest://", codec.JSON{})
	g.Record("b").From("ingest:///b/{x}", codec.JSON{}, pipeline.WithParams(pipeline.Params{"colour": "red"}))
	g.Pipeline("p").From("a").To("ingest://x#frag", codec.JSON{}, pipeline.WithParams(pipeline.Params{"method": "P O"}))
	err := g.Validate()
	var ve *pipeline.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"want a request path", "plain path", "colour: unknown inbound link setting", "'#'"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestStatusErrorExcerpt(t *testing.T) {
	long := bytes.Repeat([]byte("é"), 300)
	e := excerpt(long)
	if len(e) > excerptLen+len("…") || !strings.HasSuffix(e, "…") || strings.ContainsRune(e, '\uFFFD') {
		t.Fatalf("excerpt %q (%d bytes)", e, len(e))
	}
	if got := excerpt([]byte("  a\n\tb  ")); got != "a b" {
		t.Fatalf("excerpt = %q", got)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true, "127.3.2.1": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.1": false, "example.com": false} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v", host, got)
		}
	}
}

// Typed options from the Go API (no Path: taken from the link address).
func TestIngestTypedOptions(t *testing.T) {
	ingest := mustBuilder(t, "http://127.0.0.1:0", Config{})
	g := pipeline.New().Connector("ingest", ingest).Connector("", mem.New(nil))
	g.Record("c").From("ingest://c", codec.JSON{}, pipeline.Options(In{Methods: []string{"PUT"}})).To("mem://x", codec.JSON{})
	start(t, g)
	if code, body := do(t, "PUT", ingestURL(ingest, "/c"), `{}`, nil); code != 202 {
		t.Fatalf("PUT = %d %s", code, body)
	}
	if code, _ := do(t, "POST", ingestURL(ingest, "/c"), `{}`, nil); code != 405 {
		t.Fatalf("POST = %d, want 405", code)
	}
}

// wait ack with a sink that does not answer in time: 504, and the record
// still reaches the sink afterwards.
func TestIngestWaitAckTimeout(t *testing.T) {
	gate := make(chan struct{})
	srv := newHookServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		<-gate
		w.WriteHeader(http.StatusOK)
	})
	ingest := mustBuilder(t, "http://127.0.0.1:0", Config{Wait: WaitAck, AckTimeout: 100 * time.Millisecond})
	g := pipeline.New().Connector("ingest", ingest).Connector("hooks", mustBuilder(t, srv.URL, Config{}))
	g.Record("r").From("ingest:///r", codec.JSON{})
	g.Pipeline("p").From("r").To("hooks://x", codec.JSON{})
	start(t, g)
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	if code, body := post(t, ingestURL(ingest, "/r"), `{"n":1}`, nil); code != http.StatusGatewayTimeout {
		t.Fatalf("POST = %d %s, want 504", code, body)
	}
	release()
	if h := srv.next(t); h.Body != `{"n":1}` {
		t.Fatalf("webhook body %q", h.Body)
	}
}
