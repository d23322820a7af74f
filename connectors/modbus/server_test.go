package modbus_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/modbus"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

func needMbpoll(t *testing.T) {
	need(t, "mbpoll", func() error { _, err := exec.LookPath("mbpoll"); return err })
}

// mbpoll runs Debian's mbpoll against port once (-1) and returns its
// output; args are mbpoll's own (-t, -r, -c, values after --).
func mbpoll(t *testing.T, port int, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	all := append([]string{"-m", "tcp", "-a", "1", "-1", "-o", "2", "-p", strconv.Itoa(port)}, args...)
	// Values to write come last, after the host.
	host, vals := []string{"127.0.0.1"}, []string(nil)
	for i, a := range all {
		if a == "--" {
			all, vals = all[:i:i], all[i:]
			break
		}
	}
	out, err := exec.CommandContext(ctx, "mbpoll", append(append(all, host...), vals...)...).CombinedOutput()
	return string(out), err
}

// values extracts the "[n]: value" lines of mbpoll's output.
func values(out string) []string {
	var vs []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "[") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				vs = append(vs, strings.TrimSpace(v))
			}
		}
	}
	return vs
}

func startServer(t *testing.T, inbound []pipeline.Subscription, rec *recorder) (*modbus.Builder, *modbus.ServerConn, int) {
	t.Helper()
	port := freePort(t)
	b := builder(t, "modbus://127.0.0.1:"+strconv.Itoa(port), pipeline.Params{"mode": "server"})
	for i := range inbound {
		inbound[i].Options = linkOpts(t, b, pipeline.Inbound, inbound[i].Filter, inbound[i].Options.(pipeline.Params))
	}
	c, err := b.Build(context.Background(), pipeline.BuildEnv{Name: "scada", Inbound: inbound})
	if err != nil {
		t.Fatal(err)
	}
	srv := c.(*modbus.ServerConn)
	var done chan error
	cancel := func() {}
	if len(inbound) > 0 {
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		done = make(chan error, 1)
		go func() { done <- srv.Serve(ctx, inbound, rec) }()
	}
	t.Cleanup(func() {
		cancel()
		if done != nil {
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		}
		ctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if !waitFor(10*time.Second, func() bool { return srv.Ready() == nil }) {
		t.Fatalf("server not listening: %v", srv.Ready())
	}
	return b, srv, port
}

// TestServerServesLatestToMbpoll: records published to a server-mode
// link are what mbpoll reads from the registers, the latest winning.
func TestServerServesLatestToMbpoll(t *testing.T) {
	needMbpoll(t)
	b, srv, port := startServer(t, nil, nil)
	opts := linkOpts(t, b, pipeline.Outbound, "boiler", pipeline.Params{
		"field.temp":  "input 0 float32",
		"field.tlow":  "input 2 float32 words low",
		"field.count": "holding 0 int16",
		"field.on":    "coil 0",
		"field.alarm": "discrete 2",
	})
	for _, rec := range []string{`{"temp":20,"count":1,"on":false,"alarm":true}`, `{"temp":21.5,"tlow":-0.25,"count":-7,"on":true}`} {
		if err := srv.Publish(context.Background(), "boiler", opts, &pipeline.Envelope{Payload: []byte(rec)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-t", "3:float", "-B", "-r", "1"}, "21.5"},
		{[]string{"-t", "3:float", "-r", "3"}, "-0.25"}, // mbpoll's default: low word first
		{[]string{"-t", "4", "-r", "1"}, "65529 (-7)"},
		{[]string{"-t", "0", "-r", "1"}, "1"},
		{[]string{"-t", "1", "-r", "3"}, "1"},
	} {
		out, err := mbpoll(t, port, tc.args...)
		if v := values(out); err != nil || len(v) != 1 || v[0] != tc.want {
			t.Fatalf("mbpoll %v: %v, %q; want %s", tc.args, err, out, tc.want)
		}
	}
	if err := srv.Publish(context.Background(), "boiler", opts, &pipeline.Envelope{Payload: []byte(`{"count":"many"}`)}); !pipeline.IsPermanent(err) {
		t.Fatalf("a wrong value: %v, want a permanent error", err)
	}
}

// TestServerClientWrites: mbpoll writes holding registers and coils a
// server's from link declares; each write is a record of the link's
// fields. A write elsewhere is refused with an exception.
func TestServerClientWrites(t *testing.T) {
	needMbpoll(t)
	rec := newRecorder()
	_, srv, port := startServer(t, []pipeline.Subscription{
		{Filter: "setpoints", Options: pipeline.Params{"field.sp": "holding 10 int16", "field.mode": "holding 11", "field.run": "coil 4"}},
	}, rec)
	if out, err := mbpoll(t, port, "-t", "4", "-r", "11", "--", "65496", "3"); err != nil {
		t.Fatalf("mbpoll write: %v\n%s", err, out)
	}
	if !rec.waitPayload(10*time.Second, `{"run":false,"sp":-40,"mode":3}`) {
		t.Fatalf("no record for the write; got %q", rec.last())
	}
	if out, err := mbpoll(t, port, "-t", "0", "-r", "5", "--", "1"); err != nil {
		t.Fatalf("mbpoll write coil: %v\n%s", err, out)
	}
	if !rec.waitPayload(10*time.Second, `{"run":true,"sp":-40,"mode":3}`) {
		t.Fatalf("no record for the coil write; got %q", rec.last())
	}
	out, err := mbpoll(t, port, "-t", "4", "-r", "1", "--", "5")
	if err == nil || !strings.Contains(strings.ToLower(out), "illegal data address") {
		t.Fatalf("a write outside the from links: %v\n%s", err, out)
	}
	if got := len(rec.all()); got != 2 {
		t.Fatalf("%d records, want 2", got)
	}
	if st := srv.Stats(); st.ClientWrites != 3 {
		t.Fatalf("stats %+v", st)
	}
}
