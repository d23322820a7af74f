package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/observability/api"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// A watcher that stops reading does not slow the graph: every value is
// still written and read by the pipeline, and the watcher's losses are
// counted: each value written since it opened is sent, queued or dropped.
func TestSlowWatcherDoesNotBlockThePipeline(t *testing.T) {
	in := start(t, testFlow, api.Options{})
	// A client with a tiny receive buffer that reads the hello and then
	// nothing more.
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", in.base+"/api/v1/watch?records=setpoint&buffer=4", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "event: hello") {
			break
		}
	}
	var watchers []api.Watcher
	list := func() {
		t.Helper()
		_, body, _ := do(t, "GET", in.base+"/api/v1/watchers", "", "")
		if err := json.Unmarshal([]byte(body), &watchers); err != nil {
			t.Fatalf("watchers %s: %v", body, err)
		}
	}
	list()
	if len(watchers) != 1 || watchers[0].Records[0] != "setpoint" {
		t.Fatalf("watchers %+v", watchers)
	}

	// 2000 values of 8 KiB: far more than the socket buffers hold.
	const n = 2000
	payload := []byte(`{"pad":"` + strings.Repeat("x", 8<<10) + `"}`)
	v, err := codec.LazyJSON{}.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	setCtx, setCancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer setCancel()
	sets := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := in.r.Set(setCtx, "setpoint", pipeline.Envelope{Value: v, Payload: payload}); err != nil {
				sets <- fmt.Errorf("set %d: %w", i, err)
				return
			}
		}
		sets <- nil
	}()
	// A bound, not a measurement: the sets take milliseconds unless the
	// watcher blocks them.
	select {
	case err := <-sets:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the sets did not finish: the stalled watcher blocks the graph")
	}
	// The pipeline reading the record got every value.
	eventually(t, "pipeline apply read every value", func() bool { return in.r.Stats().Pipelines["apply"].In == n })
	var w api.Watcher
	eventually(t, "the watcher's values are accounted for", func() bool {
		list()
		w = watchers[0]
		return w.Sent+w.Dropped+uint64(w.Queued) == n
	})
	if w.Dropped == 0 {
		t.Errorf("the stalled watcher dropped nothing: %+v", w)
	}
	t.Logf("stalled watcher: %+v", w)
}
