package pipeline_test

import (
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/stages/expr"
)

// TestPassthrough: a pipeline that only filters, from a record decoded
// with the codec of its output, publishes the original bytes (here: key
// order and spacing no encoder would produce); any stage that may change
// the value, another output codec, or a record written by a pipeline
// re-encodes.
func TestPassthrough(t *testing.T) {
	const in = `{"temp": 30.5,  "device":"d-1"}`
	const reencoded = `{"device":"d-1","temp":30.5}`
	filter := func() pipeline.Stage { return expr.Filter(expr.MustCompile(expr.ExprLang, "temp > 25.0", expr.Bool)) }
	cases := []struct {
		name  string
		build func(g *pipeline.Graph)
		want  string
	}{
		{"expression filter only: original bytes", func(g *pipeline.Graph) {
			g.Pipeline("p").From("in").Via(filter()).To("mem://out", codec.JSON{})
		}, in},
		{"filter, dedupe, log and throttle: original bytes", func(g *pipeline.Graph) {
			g.Pipeline("p").From("in").Via(filter(), stages.Dedupe(func(e *pipeline.Envelope) ([]byte, error) { return e.Payload, nil }, 8),
				stages.Log(nil, "p", "x"), stages.Throttle(1000, time.Second)).To("mem://out", codec.JSON{})
		}, in},
		{"record publisher with the same codec: original bytes", func(g *pipeline.Graph) {
			g.Record("in").To("mem://out", codec.JSON{})
		}, in},
		{"set changes the value: re-encoded", func(g *pipeline.Graph) {
			g.Pipeline("p").From("in").Via(filter(), expr.Set(expr.Assignment{Field: "alert", Expr: expr.MustCompile(expr.ExprLang, "true", expr.Any)})).
				To("mem://out", codec.JSON{})
		}, `{"alert":true,"device":"d-1","temp":30.5}`},
		{"a Go filter may change the value: re-encoded", func(g *pipeline.Graph) {
			g.Pipeline("p").From("in").Via(stages.FilterValue(func(m map[string]any) bool { return true })).To("mem://out", codec.JSON{})
		}, reencoded},
		{"no stage, other output codec: encoded", func(g *pipeline.Graph) {
			g.Pipeline("p").From("in").To("mem://out", codec.MsgPack{})
		}, "\x00"}, // checked below: not the input bytes
		{"a record written by a pipeline: re-encoded downstream", func(g *pipeline.Graph) {
			g.Record("mid").WithBuffer(buffer.Config{Kind: buffer.Queue, Size: 16})
			g.Pipeline("a").From("in").Via(expr.Set(expr.Assignment{Field: "alert", Expr: expr.MustCompile(expr.ExprLang, "true", expr.Any)})).Into("mid")
			g.Pipeline("b").From("mid").Via(filter()).To("mem://out", codec.JSON{})
		}, `{"alert":true,"device":"d-1","temp":30.5}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bus := mem.NewBus()
			g := pipeline.New().Connector("", mem.New(bus))
			g.Record("in").From("mem://in", codec.JSON{})
			c.build(g)
			r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			out, unsub := bus.Subscribe("out", 10)
			defer unsub()
			ctx, stop := runMem(t, r)
			publishMem(t, ctx, bus, "in", in)
			got := string(recv(t, out).Payload)
			if c.want == "\x00" {
				if got == in {
					t.Errorf("msgpack output passed the JSON input through unchanged")
				}
			} else if got != c.want {
				t.Errorf("out = %s, want %s", got, c.want)
			}
			_ = stop()
		})
	}
}

// Passthrough forwards a payload only when the codec could have written
// it: a JSON payload with invalid UTF-8 is encoded from its value (U+FFFD),
// so a filter-only pipeline still writes valid JSON.
func TestPassthroughInvalidUTF8IsReencoded(t *testing.T) {
	for _, c := range []struct {
		name string
		cd   pipeline.Codec
		want string
	}{
		{"eager JSON", codec.JSON{}, "{\"device\":\"d-\ufffd\",\"temp\":30.5}"},
		{"lazy JSON", codec.LazyJSON{}, "{\"device\":\"d-\ufffd\",\"temp\":30.5}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bus := mem.NewBus()
			g := pipeline.New().Connector("", mem.New(bus))
			g.Record("in").From("mem://in", c.cd)
			g.Pipeline("p").From("in").Via(expr.Filter(expr.MustCompile(expr.ExprLang, "temp > 25.0", expr.Bool))).To("mem://out", c.cd)
			r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			out, unsub := bus.Subscribe("out", 10)
			defer unsub()
			ctx, stop := runMem(t, r)
			publishMem(t, ctx, bus, "in", "{\"device\":\"d-\xff\",\"temp\":30.5}")
			publishMem(t, ctx, bus, "in", `{"temp": 26,  "device":"ok"}`)
			if got := string(recv(t, out).Payload); got != c.want {
				t.Errorf("invalid UTF-8: out = %q, want %q", got, c.want)
			}
			if got := string(recv(t, out).Payload); got != `{"temp": 26,  "device":"ok"}` {
				t.Errorf("valid payload not passed through: %q", got)
			}
			_ = stop()
		})
	}
}

// Async stages (batch, windows) count what enters them, like fused stages.
func TestAsyncStageCountsIn(t *testing.T) {
	bus := mem.NewBus()
	g := pipeline.New().Connector("", mem.New(bus))
	g.Record("in").From("mem://in", codec.LazyJSON{})
	g.Pipeline("p").From("in").Via(expr.Filter(expr.MustCompile(expr.ExprLang, "temp > 25.0", expr.Bool)), stages.Batch(2, time.Hour)).To("mem://out", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, unsub := bus.Subscribe("out", 10)
	defer unsub()
	ctx, stop := runMem(t, r)
	for _, m := range []string{`{"temp":30}`, `{"temp":10}`, `{"temp":31}`} {
		publishMem(t, ctx, bus, "in", m)
	}
	recv(t, out) // the batch of two hot readings
	_ = stop()
	st := r.Stats().Pipelines["p"].Stages
	if len(st) != 2 || st[0].In != 3 || st[1].In != 2 {
		t.Fatalf("stage counters %+v, want filter In 3 and batch In 2", st)
	}
}

func TestSchemaOf(t *testing.T) {
	type reading struct {
		Device string            `json:"device"`
		Temp   float64           `json:"temp,omitempty"`
		Seq    int64             `json:"seq"`
		OK     bool              //
		Tags   map[string]string `json:"tags"`
		Hist   []float64         `json:"hist"`
		Skip   string            `json:"-"`
		hidden int
	}
	got := pipeline.SchemaOf[reading]()
	want := pipeline.Schema{{"device", pipeline.String}, {"temp", pipeline.Float}, {"seq", pipeline.Int}, {"OK", pipeline.Bool}, {"tags", pipeline.Object}, {"hist", pipeline.List}}
	if len(got) != len(want) {
		t.Fatalf("SchemaOf = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("field %d = %v, want %v", i, got[i], want[i])
		}
	}
	_ = reading{}.hidden
}
