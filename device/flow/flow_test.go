package flow_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/device/binflat"
	"github.com/aimdb-dev/aimdb-flow/device/flow"
	"github.com/aimdb-dev/aimdb-flow/device/frame"
	"github.com/aimdb-dev/aimdb-flow/device/internal/alloctest"
	"github.com/aimdb-dev/aimdb-flow/device/jsonflat"
	"github.com/aimdb-dev/aimdb-flow/device/value"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

const hotFilter = `temp > 25.0 && device startsWith "d-"`

// build assembles the example device flow: readings -> filter/map -> alerts
// (ring) -> framed writer.
func build(t testing.TB, w io.Writer) (*flow.Flow, *flow.Record, *flow.Pipeline) {
	return buildWith(t, w, jsonflat.Codec{})
}

func buildWith(t testing.TB, w io.Writer, sinkCodec flow.Codec) (*flow.Flow, *flow.Record, *flow.Pipeline) {
	f := flow.New(flow.Config{MaxFields: 8, ArenaBytes: 128})
	readings := f.Record("sensor.temp", buffer.Config{Kind: buffer.Ring, Size: 8})
	alerts := f.Record("alerts", buffer.Config{Kind: buffer.Ring, Size: 16})
	hot := f.Pipeline("hot").From(readings).
		Filter(hotFilter).
		Map(`{"device": device, "temp": temp, "alert": true}`).
		Into("", alerts)
	f.Pipeline("uplink").From(alerts).To("alerts/temp", flow.NewFrameSink(frame.NewWriter(w, 160), sinkCodec, 140))
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	return f, readings, hot
}

func TestPipelineEndToEnd(t *testing.T) {
	var uart bytes.Buffer
	f, readings, hot := build(t, &uart)
	ctx := context.Background()
	obj := value.NewObject(8, 64)
	for i, tc := range []struct {
		dev  string
		temp float64
	}{{"d-1", 20}, {"d-2", 26.5}, {"x-3", 30}, {"d-4", 31.25}} {
		obj.Reset()
		obj.Set("device", value.StringOf(tc.dev))
		obj.Set("temp", value.FloatOf(tc.temp))
		obj.Set("seq", value.IntOf(int64(i)))
		if err := readings.Write(ctx, "sensors/"+tc.dev+"/temp", obj); err != nil {
			t.Fatal(err)
		}
	}
	n, err := f.Poll(ctx)
	if err != nil || n != 6 { // 4 readings + 2 alerts
		t.Fatalf("Poll = %d, %v", n, err)
	}
	r := frame.NewReader(&uart, 160)
	var got []string
	for {
		topic, payload, err := r.ReadRecord()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(topic)+" "+string(payload))
	}
	want := []string{
		`alerts/temp {"device":"d-2","temp":26.5,"alert":true}`,
		`alerts/temp {"device":"d-4","temp":31.25,"alert":true}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st := hot.Stats(); st.In != 4 || st.Out != 2 || st.Filtered != 2 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStageErrorsAreCountedNotFatal(t *testing.T) {
	f := flow.New(flow.Config{Storage: jsonflat.Codec{}})
	in := f.Record("in", buffer.Config{Kind: buffer.Queue, Size: 4})
	var seen []string
	var out []string
	p := f.Pipeline("p").From(in).Filter(`temp > 1`).
		To("", flow.SinkFunc(func(_ context.Context, topic []byte, o *value.Object) error {
			out = append(out, string(topic))
			return nil
		})).
		OnError(func(_ string, err error) { seen = append(seen, err.Error()) })
	ctx := context.Background()
	in.WriteRaw(ctx, []byte("a"), []byte(`{"temp":"hot"}`)) // string > int: run-time type error
	in.WriteRaw(ctx, []byte("b"), []byte(`not json`))
	in.WriteRaw(ctx, []byte("c"), []byte(`{"temp":2}`))
	if _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Errors != 2 || st.Out != 1 || len(seen) != 2 || fmt.Sprint(out) != "[c]" {
		t.Fatalf("stats %+v, errors %q, out %v", st, seen, out)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	f := flow.New(flow.Config{})
	r := f.Record("r", buffer.Config{Kind: buffer.Ring})
	f.Pipeline("a").From(r).Filter(`x.y > 1`).Map(`temp + 1`)
	f.Pipeline("b")
	err := f.Validate()
	for _, want := range []string{"record r", "member access", "map needs a map literal", "pipeline a: no To", "pipeline b: no From"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, missing %q", err, want)
		}
	}
}

func TestRingLagIsCounted(t *testing.T) {
	f := flow.New(flow.Config{})
	in := f.Record("in", buffer.Config{Kind: buffer.Ring, Size: 2})
	var n int
	p := f.Pipeline("p").From(in).To("", flow.SinkFunc(func(context.Context, []byte, *value.Object) error { n++; return nil }))
	for i := 0; i < 5; i++ {
		in.WriteRaw(context.Background(), nil, []byte{0}) // an empty binflat record
	}
	f.Poll(context.Background())
	if st := p.Stats(); st.Lagged != 3 || n != 2 {
		t.Fatalf("stats %+v, delivered %d", st, n)
	}
}

func TestRunDrainsAndStopsWhenInputCloses(t *testing.T) {
	var uart bytes.Buffer
	f, readings, _ := build(t, &uart)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	obj := value.NewObject(4, 32)
	obj.Set("device", value.StringOf("d-9"))
	obj.Set("temp", value.FloatOf(40))
	if err := readings.Write(ctx, "t", obj); err != nil {
		t.Fatal(err)
	}
	readings.Close() // the pipeline's reader subscribed at build time: it still drains the value

	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(uart.Bytes(), []byte(`"device":"d-9"`)) {
		// frames are COBS-encoded, but "d-9" has no zero bytes so it appears verbatim
		t.Fatalf("alert not written: %q", uart.Bytes())
	}
}

func TestNoAllocationsPerRecord(t *testing.T) {
	// binflat frames: under TinyGo, JSON-encoding a float allocates once
	// (strconv.AppendFloat's digit buffer escapes); see jsonflat's test.
	f, readings, _ := buildWith(t, io.Discard, binflat.Codec{})
	ctx := context.Background()
	obj := value.NewObject(8, 64)
	obj.Set("device", value.StringOf("d-1"))
	obj.Set("temp", value.FloatOf(30))
	obj.Set("seq", value.IntOf(0))
	allocs := alloctest.PerRun(1000, func() {
		if err := readings.Write(ctx, "sensors/d-1/temp", obj); err != nil {
			t.Fatal(err)
		}
		if n, err := f.Poll(ctx); n != 2 || err != nil {
			t.Fatal(n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocs per record", allocs)
	}
}

func BenchmarkRecord(b *testing.B) {
	f, readings, _ := buildWith(b, io.Discard, binflat.Codec{})
	ctx := context.Background()
	obj := value.NewObject(8, 64)
	obj.Set("device", value.StringOf("d-1"))
	obj.Set("temp", value.FloatOf(30))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		obj.Set("temp", value.FloatOf(float64(20+i%20)))
		readings.Write(ctx, "sensors/d-1/temp", obj)
		f.Poll(ctx)
	}
}

func TestMsgLimits(t *testing.T) {
	var m flow.Msg
	if err := m.Set(make([]byte, 100), make([]byte, flow.MaxMsg)); !errors.Is(err, flow.ErrMsgTooLong) {
		t.Fatal(err)
	}
	f := flow.New(flow.Config{})
	r := f.Record("r", buffer.Config{Kind: buffer.Latest})
	big := value.NewObject(2, 512)
	big.Set("s", value.BytesOf(make([]byte, 300)))
	if err := r.Write(context.Background(), "t", big); !errors.Is(err, flow.ErrMsgTooLong) {
		t.Fatalf("oversized record: %v", err)
	}
}

func Example() {
	var uart bytes.Buffer // on a device: machine.UART0 or any io.Writer
	f := flow.New(flow.Config{MaxFields: 8, ArenaBytes: 128})
	readings := f.Record("sensor.temp", buffer.Config{Kind: buffer.Ring, Size: 8})
	f.Pipeline("alerts").From(readings).
		Filter(`temp > 25.0 && device startsWith "d-"`).
		Map(`{"device": device, "temp": temp, "alert": true}`).
		To("alerts/temp", flow.NewFrameSink(frame.NewWriter(&uart, 160), jsonflat.Codec{}, 140))
	if err := f.Validate(); err != nil {
		panic(err)
	}

	ctx := context.Background()
	rec := value.NewObject(8, 64) // reused for every reading
	for _, temp := range []float64{21.5, 27.0} {
		rec.Reset()
		rec.Set("device", value.StringOf("d-1"))
		rec.Set("temp", value.FloatOf(temp))
		readings.Write(ctx, "sensors/d-1/temp", rec)
		f.Poll(ctx)
	}

	topic, payload, _ := frame.NewReader(&uart, 160).ReadRecord()
	fmt.Println(string(topic), string(payload))
	// Output: alerts/temp {"device":"d-1","temp":27,"alert":true}
}
