package serial_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	exprlang "github.com/expr-lang/expr"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/connectors/serial"
	"github.com/aimdb-dev/aimdb-flow/device/flow"
	"github.com/aimdb-dev/aimdb-flow/device/frame"
	"github.com/aimdb-dev/aimdb-flow/device/jsonflat"
	"github.com/aimdb-dev/aimdb-flow/device/value"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// hotFilter is shared by the device pipeline (device/expr) and the host
// pipeline (expr-lang): the same text filters on both sides.
const hotFilter = `temp > 25.0 && device startsWith "d-"`

// exprFilter is a host stage running an expr-lang filter on decoded JSON.
func exprFilter(t *testing.T, src string) pipeline.Processor {
	prog, err := exprlang.Compile(src, exprlang.AsBool())
	if err != nil {
		t.Fatal(err)
	}
	return stages.Filter(func(env *pipeline.Envelope) (bool, error) {
		out, err := exprlang.Run(prog, env.Value)
		if err != nil {
			return false, err
		}
		return out.(bool), nil
	})
}

// devicePipeline runs the device side: readings -> filter -> ring ->
// framed writer on w, like the cortex-m example.
func devicePipeline(t *testing.T, w io.Writer, temps []float64) {
	f := flow.New(flow.Config{MaxFields: 8, ArenaBytes: 128})
	readings := f.Record("sensor.temp", buffer.Config{Kind: buffer.Queue, Size: 4})
	alerts := f.Record("alerts", buffer.Config{Kind: buffer.Ring, Size: 16})
	f.Pipeline("hot").From(readings).Filter(hotFilter).
		Map(`{"device": device, "temp": temp, "seq": seq}`).Into("", alerts)
	f.Pipeline("uplink").From(alerts).To("", flow.NewFrameSink(frame.NewWriter(w, 200), jsonflat.Codec{}, 180))
	if err := f.Validate(); err != nil {
		t.Error(err)
		return
	}
	ctx := context.Background()
	obj := value.NewObject(8, 64)
	for i, temp := range temps {
		obj.Reset()
		obj.Set("device", value.StringOf("d-"+fmt.Sprint(i%3)))
		obj.Set("temp", value.FloatOf(temp))
		obj.Set("seq", value.IntOf(int64(i)))
		if err := readings.Write(ctx, "alerts/d-"+fmt.Sprint(i%3), obj); err != nil {
			t.Error(err)
			return
		}
		if _, err := f.Poll(ctx); err != nil {
			t.Error(err)
			return
		}
	}
}

type host struct {
	r   *pipeline.Runner
	out <-chan pipeline.Envelope
}

// startHost runs a host graph: serial (named "dev") -> record -> expr-lang
// filter -> mem://host/out.
func startHost(t *testing.T, b pipeline.Builder, link string) (*host, context.CancelFunc, chan error) {
	t.Helper()
	bus := mem.NewBus()
	g := pipeline.New().Connector("dev", b).Connector("", mem.New(bus))
	g.Record("alerts").From(link, codec.JSON{})
	g.Pipeline("fwd").From("alerts").Via(exprFilter(t, hotFilter)).To("mem://host/out", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, unsub := bus.Subscribe("host/#", 1000)
	t.Cleanup(unsub)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(cancel)
	return &host{r: r, out: out}, cancel, done
}

func (h *host) collect(t *testing.T, n int) []map[string]any {
	t.Helper()
	var got []map[string]any
	deadline := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case env := <-h.out:
			var m map[string]any
			if err := json.Unmarshal(env.Payload, &m); err != nil {
				t.Fatal(err)
			}
			got = append(got, m)
		case <-deadline:
			t.Fatalf("got %d of %d records: %v", len(got), n, got)
		}
	}
	return got
}

func seqs(ms []map[string]any) string {
	var s []string
	for _, m := range ms {
		s = append(s, fmt.Sprint(m["seq"]))
	}
	return strings.Join(s, ",")
}

var temps = []float64{20, 26, 30, 10, 25.5, 27, 24, 99}

const wantSeqs = "1,2,4,5,7" // temp > 25

func TestPipeEndToEnd(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	var once sync.Once
	b := serial.New(serial.Config{Open: func(context.Context) (io.ReadCloser, error) {
		var s io.ReadCloser
		once.Do(func() { s = pr })
		if s == nil {
			return nil, errors.New("pipe already consumed")
		}
		return s, nil
	}})
	h, cancel, done := startHost(t, b, "dev://alerts/#")
	devicePipeline(t, pw, temps)
	got := h.collect(t, 5)
	if seqs(got) != wantSeqs {
		t.Fatalf("seqs %s, want %s", seqs(got), wantSeqs)
	}
	if got[0]["device"] != "d-1" || got[0]["temp"] != 26.0 {
		t.Fatalf("first record %v", got[0])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// listen returns a loopback listener whose Accept gives up after 10 s.
func listen(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	l := ln.(*net.TCPListener)
	l.SetDeadline(time.Now().Add(10 * time.Second))
	return l
}

func TestTCPEndToEndWithReconnect(t *testing.T) {
	ln := listen(t)
	b, err := serial.Factory("serial://"+ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, cancel, done := startHost(t, b, "dev://alerts/#")

	// First connection: send half, then drop the link.
	c1, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	devicePipeline(t, c1, temps[:4])
	if got := h.collect(t, 2); seqs(got) != "1,2" {
		t.Fatalf("first connection: %s", seqs(got))
	}
	c1.Close()
	// The connector reconnects; the device sends the rest.
	c2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	devicePipeline(t, c2, []float64{30, 1, 40})
	if got := h.collect(t, 2); seqs(got) != "0,2" {
		t.Fatalf("second connection: %s", seqs(got))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPublishWritesFramesToDevice(t *testing.T) {
	ln := listen(t)
	b, _ := serial.Factory("serial://"+ln.Addr().String(), nil)
	bus := mem.NewBus()
	g := pipeline.New().Connector("dev", b).Connector("", mem.New(bus))
	g.Record("cmd").From("mem://cmd", codec.JSON{})
	g.Pipeline("down").From("cmd").To("dev://cmd/{device}", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for r.Ready() != nil && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if err := bus.Publish(ctx, "cmd", &pipeline.Envelope{Payload: []byte(`{"device":"d-1","led":true}`)}); err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	tp, payload, err := frame.NewReader(c, 256).ReadRecord()
	if err != nil {
		t.Fatal(err)
	}
	obj := value.NewObject(4, 64)
	if err := jsonflatDecode(payload, obj); err != nil || string(tp) != "cmd/d-1" {
		t.Fatalf("device got %q %q: %v", tp, payload, err)
	}
	if v, _ := obj.Lookup("led"); !v.Truthy() {
		t.Fatalf("led = %v", v)
	}
	cancel()
	<-done
}

func TestRegularFileIsFiniteAndCorruptFramesAreSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "capture.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{1, 2, 3, 0}) // noise before the first frame
	good := frame.AppendEncode(nil, frame.AppendRecord(nil, "alerts/d-0", []byte(`{"device":"d-0","temp":50,"seq":100}`)))
	bad := append([]byte(nil), good...)
	bad[5] ^= 1
	f.Write(bad)
	devicePipeline(t, f, temps)
	f.Write(good)
	f.Write(frame.AppendEncode(nil, frame.AppendRecord(nil, "other/x", []byte(`{"device":"d-0","temp":50,"seq":101}`))))
	f.Close()

	b, err := serial.Factory("serial://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _, done := startHost(t, b, "dev://alerts/#")
	select {
	case err := <-done: // finite: the runner stops by itself
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("finite source did not end")
	}
	got := h.collect(t, 6)
	if seqs(got) != wantSeqs+",100" {
		t.Fatalf("seqs %s", seqs(got))
	}
	if st := h.r.Stats(); st.DeadLetters != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFactoryErrors(t *testing.T) {
	for _, tc := range []struct {
		ep      string
		p       pipeline.Params
		wantErr string
	}{
		{"serial://", nil, `serial endpoint "serial://": want serial:///dev/ttyX, serial:///path or serial://host:port`},
		{"serial:///dev/ttyS0", pipeline.Params{"baud": "fast"}, `baud "fast": want a whole number from 1 to 2147483647`},
		{"serial:///dev/ttyS0", pipeline.Params{"baud": "0"}, `baud "0": want a whole number from 1 to 2147483647`},
		{"serial:///dev/ttyS0", pipeline.Params{"max_frame": "4k"}, `max_frame "4k": unit "k" is ambiguous: write KiB (powers of 1024) or KB (powers of 1000)`},
		{"serial:///dev/ttyS0", pipeline.Params{"parity": "even"}, `parity: unknown setting (known: baud, max_frame)`},
		{"serial:///dev/ttyS0", pipeline.Params{"baud": "x", "max_fram": "1"}, `baud "x": want a whole number from 1 to 2147483647` + "\n" + `max_fram: unknown setting (did you mean "max_frame"?)`},
		{"serial://127.0.0.1:1", pipeline.Params{"baud": "9600"}, `baud "9600": applies to a device path, not a TCP address`},
	} {
		if _, err := serial.Factory(tc.ep, tc.p); err == nil || err.Error() != tc.wantErr {
			t.Errorf("Factory(%q, %v) = %v, want %q", tc.ep, tc.p, err, tc.wantErr)
		}
	}
	b, err := serial.Factory("serial:///dev/ttyS0", pipeline.Params{"baud": "115200", "max_frame": "16KiB"})
	if err != nil || b.Scheme() != "serial" {
		t.Fatal(b, err)
	}
	lp := b.(pipeline.LinkOptionParser)
	if _, err := lp.ParseLinkOptions(pipeline.Inbound, "a/#/b", nil); err == nil {
		t.Fatal("invalid topic filter accepted")
	}
	if _, err := lp.ParseLinkOptions(pipeline.Outbound, "a", pipeline.Params{"qos": "1"}); err == nil ||
		err.Error() != "qos: unknown outbound link setting (none are accepted here)" {
		t.Fatalf("link option: %v", err)
	}
}

func ExampleFactory() {
	// connector dev "serial:///dev/ttyACM0" baud 115200
	b, err := serial.Factory("serial:///dev/ttyACM0", pipeline.Params{"baud": "115200"})
	if err != nil {
		panic(err)
	}
	g := pipeline.New().Connector("dev", b)
	g.Record("sensor.temp").From("dev://sensors/+/temp", codec.JSON{})
	fmt.Println(b.Scheme())
	// Output: serial
}
