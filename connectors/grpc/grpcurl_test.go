package grpcconn_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/tests/flowrun"
)

// grpcurlPath finds grpcurl (scripts/ensure-grpc.sh builds it): a
// failure with CI set, a skip without.
func grpcurlPath(t *testing.T) string {
	t.Helper()
	dirs := []string{os.Getenv("GRPC_TOOLS")}
	if gp, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.Join(strings.TrimSpace(string(gp)), "aimdb-flow-tools", "grpc"))
	}
	for _, d := range dirs {
		if p := filepath.Join(d, "bin", "grpcurl"); d != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("grpcurl"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("grpcurl not found: run scripts/ensure-grpc.sh")
	}
	t.Skip("grpcurl not found: run scripts/ensure-grpc.sh")
	return ""
}

// TestGrpcurlInterop drives a server-mode connector with grpcurl through
// server reflection: it lists the service, subscribes to the pipeline's
// output topic and publishes readings (seeing their Acks).
func TestGrpcurlInterop(t *testing.T) {
	grpcurl := grpcurlPath(t)
	addr := freePort(t)
	_, ctx := flowrun.Start(t, `connector edge "grpc://`+addr+`" mode server
record readings {
  from "edge://readings" decode json
}
pipeline hot {
  from readings
  filter `+"`temp > 25`"+`
  to "edge://alerts" encode json
}
`, 10*time.Second)

	run := func(args ...string) string {
		t.Helper()
		cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
		defer ccancel()
		out, err := exec.CommandContext(cctx, grpcurl, append([]string{"-plaintext"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("grpcurl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run(addr, "list"); !strings.Contains(out, "aimdb.flow.v1.Flow") {
		t.Fatalf("grpcurl list: %q, want aimdb.flow.v1.Flow", out)
	}
	if out := run(addr, "describe", "aimdb.flow.v1.Flow"); !strings.Contains(out, "rpc Publish ( stream .aimdb.flow.v1.Record ) returns ( stream .aimdb.flow.v1.Ack )") {
		t.Fatalf("grpcurl describe: %q", out)
	}

	// Subscribe in the background; its lines arrive on got.
	sctx, scancel := context.WithCancel(ctx)
	sub := exec.CommandContext(sctx, grpcurl, "-plaintext", "-d", `{"topic":"alerts"}`, addr, "aimdb.flow.v1.Flow/Subscribe")
	out, err := sub.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sub.Stderr = os.Stderr
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { scancel(); _ = sub.Wait(); wg.Wait() }()
	var mu sync.Mutex
	var text strings.Builder
	wg.Go(func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			mu.Lock()
			text.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	})
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	hot := b64(`{"temp":30}`)
	// Publish until the subscriber (which may not be registered yet)
	// shows the hot reading; every publish must be acked.
	deadline := time.Now().Add(20 * time.Second)
	for {
		acks := run("-d", `{"seq":1,"topic":"readings","payload":"`+b64(`{"temp":20}`)+`"}
{"seq":2,"topic":"readings","payload":"`+hot+`"}
{"seq":3,"topic":"nowhere","payload":"`+hot+`"}`, addr, "aimdb.flow.v1.Flow/Publish")
		if !strings.Contains(acks, `"seq": "1",`+"\n"+`  "ok": true`) || !strings.Contains(acks, `"seq": "2",`+"\n"+`  "ok": true`) {
			t.Fatalf("Publish acks: %s", acks)
		}
		if !strings.Contains(acks, `"permanent": true`) || !strings.Contains(acks, `no inbound link for topic \"nowhere\"`) {
			t.Fatalf("Publish to an unknown topic: %s", acks)
		}
		mu.Lock()
		s := text.String()
		mu.Unlock()
		if strings.Contains(s, hot) {
			if strings.Contains(s, b64(`{"temp":20}`)) {
				t.Fatalf("the filter let a cold reading through: %s", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscriber saw no alert: %q", s)
		}
	}
}
