package grpcconn_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/aimdb-dev/aimdb-flow/connectors/grpc/flowpb"
	"github.com/aimdb-dev/aimdb-flow/connectors/registry"
	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// collector is the far end of the chain: a Flow server of the test's own
// that keeps every payload published to it and acks it, slowly.
type collector struct {
	flowpb.UnimplementedFlowServer
	mu   sync.Mutex
	seen map[string]int
}

func (c *collector) Publish(stream flowpb.Flow_PublishServer) error {
	for {
		r, err := stream.Recv()
		if err != nil {
			return nil
		}
		c.mu.Lock()
		c.seen[string(r.GetPayload())]++
		c.mu.Unlock()
		// A slow sink: records queue up in the receiver, so the kill
		// finds some on their way (not a synchronisation).
		time.Sleep(time.Millisecond)
		if err := stream.Send(&flowpb.Ack{Seq: r.GetSeq(), Ok: true}); err != nil {
			return err
		}
	}
}

func (c *collector) count(p string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[p]
}

// ackSource dispatches n records and redelivers every nacked one; it
// remembers which were acknowledged.
type ackSource struct {
	n     int
	mu    sync.Mutex
	acked map[int]bool
	redo  chan int
}

func (s *ackSource) Scheme() string      { return "src" }
func (s *ackSource) Caps() pipeline.Caps { return pipeline.Caps{Inbound: true} }
func (s *ackSource) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return s, nil
}
func (s *ackSource) Publish(context.Context, string, any, *pipeline.Envelope) error {
	return fmt.Errorf("src is a source")
}
func (s *ackSource) Close(context.Context) error { return nil }

func (s *ackSource) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	send := func(i int) error {
		env := &pipeline.Envelope{Topic: subs[0].Filter, Payload: []byte(`{"n":` + strconv.Itoa(i) + `}`), Time: time.Now()}
		env.Ack = pipeline.NewAck(func(err error) {
			if err != nil {
				s.redo <- i
				return
			}
			s.mu.Lock()
			s.acked[i] = true
			s.mu.Unlock()
		})
		return d.Dispatch(ctx, env)
	}
	for i := range s.n {
		if err := send(i); err != nil {
			return nil
		}
	}
	for {
		select {
		case i := <-s.redo:
			if err := send(i); err != nil {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *ackSource) ackedSet() map[int]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]bool, len(s.acked))
	for k := range s.acked {
		out[k] = true
	}
	return out
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling an observable condition
	}
}

// TestChainKillReceiver chains two aimdb-flow instances over gRPC: an
// in-process runner (sender: a source that redelivers what is nacked →
// grpc client) and an `aimdb-flow run` process (receiver: grpc server →
// grpc client to the test's collector). The receiving process is killed
// (SIGKILL) mid-stream and started again on the same port. Every record
// the sender saw acknowledged must have reached the collector;
// duplicates are allowed and counted.
func TestChainKillReceiver(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the aimdb-flow binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "aimdb-flow")
	build := exec.Command("go", "build", "-o", bin, "github.com/aimdb-dev/aimdb-flow/cmd/aimdb-flow")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build aimdb-flow: %v", err)
	}

	col := &collector{seen: map[string]int{}}
	cln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	flowpb.RegisterFlowServer(gs, col)
	go func() { _ = gs.Serve(cln) }()
	defer gs.Stop()

	recvAddr := freePort(t)
	recvFlow := filepath.Join(dir, "receiver.flow")
	if err := os.WriteFile(recvFlow, []byte(`connector edge "grpc://`+recvAddr+`" mode server
connector cloud "grpc://`+cln.Addr().String()+`"
record readings {
  from "edge://readings" decode raw
}
pipeline forward {
  from readings
  to "cloud://collected" encode raw
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var recv *exec.Cmd
	start := func() {
		recv = exec.Command(bin, "run", recvFlow)
		recv.Stdout, recv.Stderr = io.Discard, os.Stderr
		if err := recv.Start(); err != nil {
			t.Fatal(err)
		}
	}
	start()
	defer func() {
		if recv.ProcessState == nil {
			_ = recv.Process.Kill()
			_ = recv.Wait()
		}
	}()

	const n = 3000
	src := &ackSource{n: n, acked: map[int]bool{}, redo: make(chan int, n)}
	reg := registry.Default()
	reg["src"] = func(string, pipeline.Params) (pipeline.Builder, error) { return src, nil }
	sendFlow := filepath.Join(dir, "sender.flow")
	if err := os.WriteFile(sendFlow, []byte(`connector src "src://"
connector up "grpc://`+recvAddr+`" reconnect_min 5ms reconnect_max 100ms max_inflight 64
record readings {
  from "src://r" decode raw
}
pipeline up {
  from readings
  to "up://readings" encode raw
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := dsl.LoadFiles(dsl.Options{Registry: reg}, sendFlow)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	waitFor(t, "a third of the records acked", 60*time.Second, func() bool { return len(src.ackedSet()) >= n/3 })
	if err := recv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = recv.Wait()
	atKill := len(src.ackedSet())
	start()
	waitFor(t, "every record acked", 120*time.Second, func() bool { return len(src.ackedSet()) == n })

	acked := src.ackedSet()
	lost, dups := 0, 0
	for i := range acked {
		c := col.count(`{"n":` + strconv.Itoa(i) + `}`)
		if c == 0 {
			lost++
		}
		if c > 1 {
			dups += c - 1
		}
	}
	t.Logf("%d records, %d acked when the receiver was killed; %d lost, %d duplicates", n, atKill, lost, dups)
	if lost > 0 {
		t.Fatalf("%d acked records never reached the receiver's sink", lost)
	}
	if atKill == n {
		t.Fatalf("the kill came after the last ack: nothing was in flight")
	}
}
