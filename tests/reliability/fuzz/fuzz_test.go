package fuzz

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	dexpr "github.com/aimdb-dev/aimdb-flow/device/expr"
	"github.com/aimdb-dev/aimdb-flow/device/frame"
	"github.com/aimdb-dev/aimdb-flow/device/jsonflat"
	"github.com/aimdb-dev/aimdb-flow/device/value"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/stages/expr"
)

var payloadSeeds = []string{
	`{"temp":30.5,"device":"d-1","seq":1}`,
	`{"temp":"hot","device":"d-1"}`,
	`{"temp":null,"device":7}`,
	`{"device":"d-2"}`,
	`[1,2,3]`,
	`"str"`,
	`{"temp":1e308,"device":""}`,
	`{"temp":-0,"device":"\u0000\ud800"}`,
	"{\"temp\":30,\"device\":\"a\xffb\"}",
	`{"temp": `,
	``,
}

// evalPrograms are the kinds of expressions a .flow file holds, in both
// languages.
var evalPrograms = []struct {
	lang expr.Lang
	src  string
	want expr.Want
}{
	{expr.ExprLang, `temp > 25.0 && device startsWith "d-"`, expr.Bool},
	{expr.ExprLang, `{"id": "dev-" + device, "t": temp * 2, "k": topic}`, expr.Any},
	{expr.ExprLang, `len(device) > 2 ? upper(device) : string(temp)`, expr.Any},
	{expr.ExprLang, `temp / 0 > 1 || device in ["a", "b"]`, expr.Bool},
	{expr.CEL, `temp > 25.0 && device.startsWith("d-")`, expr.Bool},
	{expr.CEL, `{"id": "dev-" + device, "t": temp * 2.0}`, expr.Any},
	{expr.CEL, `size(device) > 2 && int(temp) % 2 == 0`, expr.Bool},
}

// FuzzExprEvalHostileValues evaluates the usual filter/map expressions
// (expr-lang and CEL) against whatever an arbitrary payload decodes to:
// missing fields, wrong types, nulls, arrays, huge numbers. Evaluation
// must return a value or an error, never panic, and a filter that returns
// no error returns a bool (the runner dead-letters the error case).
func FuzzExprEvalHostileValues(f *testing.F) {
	for _, s := range payloadSeeds {
		f.Add([]byte(s), "in/x")
	}
	progs := make([]*expr.Program, len(evalPrograms))
	for i, p := range evalPrograms {
		progs[i] = expr.MustCompile(p.lang, p.src, p.want)
	}
	f.Fuzz(func(t *testing.T, payload []byte, topic string) {
		v, err := codec.JSON{}.Decode(payload)
		if err != nil {
			v = payload // raw value: expressions see no fields
		}
		env := &pipeline.Envelope{Value: v, Payload: payload, Topic: topic, Key: payload}
		for i, p := range progs {
			out, err := p.Eval(env)
			if err == nil && evalPrograms[i].want == expr.Bool {
				if _, ok := out.(bool); !ok {
					t.Fatalf("%s returned %T without an error", evalPrograms[i].src, out)
				}
			}
		}
	})
}

// FuzzExprCompile compiles arbitrary expression text in both languages:
// it must fail with an error (a *CompileError with a 1-based position when
// it is a syntax or type error), never panic.
func FuzzExprCompile(f *testing.F) {
	for _, p := range evalPrograms {
		f.Add(p.src, p.lang == expr.CEL, p.want == expr.Bool)
	}
	for _, s := range []string{"temp >", "`", "{\"a\": }", "a ?? b", "1..3 | map(#)", "\xff", "((((((((", "has(a.b)", "foo(", `"\u"`} {
		f.Add(s, false, true)
		f.Add(s, true, false)
	}
	f.Fuzz(func(t *testing.T, src string, cel, boolean bool) {
		lang, want := expr.ExprLang, expr.Any
		if cel {
			lang = expr.CEL
		}
		if boolean {
			want = expr.Bool
		}
		_, err := expr.Compile(lang, src, want)
		var ce *expr.CompileError
		if errors.As(err, &ce) && (ce.Line < 1 || ce.Col < 1) {
			t.Fatalf("%q: compile error without a position: %+v", src, ce)
		}
	})
}

// FuzzDeviceExpr compiles arbitrary text with the device evaluator and
// evaluates what compiles against a record decoded (by jsonflat) from an
// arbitrary payload: errors, never panics, and EvalBool agrees with Eval.
func FuzzDeviceExpr(f *testing.F) {
	for _, s := range []string{`temp > 25.0 && device startsWith "d-"`, `{"id": upper(device), "t": temp * 2}`,
		`abs(temp) % 0`, `int(device) + 1`, `len(trim(device)) in [1, 2]`, `temp ** 400 > 1`, `"a" + "b" + device`} {
		f.Add(s, []byte(`{"temp":30.5,"device":" d-1 "}`))
		f.Add(s, []byte(`{"temp":"x","device":7}`))
	}
	f.Fuzz(func(t *testing.T, src string, payload []byte) {
		p, err := dexpr.Compile(src)
		if err != nil {
			return
		}
		obj := value.NewObject(16, 512)
		_ = jsonflat.Decode(payload, obj)
		v, err := p.Eval(obj)
		b, berr := p.EvalBool(obj)
		if err == nil && berr == nil && v.Truthy() != b {
			t.Fatalf("%q: Eval %v but EvalBool %v", src, v, b)
		}
		if p.IsMap() {
			dst := value.NewObject(16, 512)
			_ = p.EvalInto(obj, dst)
		}
	})
}

// FuzzFrameReader feeds an arbitrary byte stream (line noise, truncated
// and overlong frames) to the device frame reader: it reports ErrCorrupt,
// ErrTooLong or ErrRecord for bad frames and resynchronises, never panics
// and always ends with io.EOF or io.ErrUnexpectedEOF. A valid frame
// written after the noise and a delimiter is always read back intact.
func FuzzFrameReader(f *testing.F) {
	good := frame.AppendEncode(nil, frame.AppendRecord(nil, "sensors/t", []byte(`{"temp":1}`)))
	f.Add(good)
	f.Add(append([]byte{1, 2, 3, 0xff, 0}, good...))
	f.Add([]byte{0, 0, 0})
	f.Add(bytes.Repeat([]byte{0xff}, 600))
	f.Fuzz(func(t *testing.T, noise []byte) {
		const max = 256
		msg := frame.AppendRecord(nil, "sensors/t", []byte(`{"temp":1}`))
		stream := append(append(append([]byte(nil), noise...), 0), frame.AppendEncode(nil, msg)...)
		fr := frame.NewReader(bytes.NewReader(stream), max)
		found := false
		for i := 0; i < len(stream)+2; i++ {
			m, err := fr.ReadFrame()
			switch {
			case err == nil:
				if len(m) > max {
					t.Fatalf("frame of %d bytes > max %d", len(m), max)
				}
				if bytes.Equal(m, msg) {
					found = true
				}
				_, _, _ = frame.SplitRecord(m)
				continue
			case errors.Is(err, frame.ErrCorrupt), errors.Is(err, frame.ErrTooLong):
				continue
			case err == io.EOF, err == io.ErrUnexpectedEOF:
			default:
				t.Fatalf("unexpected error %v", err)
			}
			break
		}
		if !found {
			t.Fatalf("valid frame after noise %x not recovered", noise)
		}
	})
}

// FuzzFrameRoundTrip: every message up to the maximum survives
// AppendEncode -> Decode, and the encoding holds no 0x00 but its last byte.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0})
	f.Add(bytes.Repeat([]byte{7}, 600))
	f.Fuzz(func(t *testing.T, msg []byte) {
		enc := frame.AppendEncode(nil, msg)
		if len(enc) > len(msg)+frame.Overhead(len(msg)) {
			t.Fatalf("encoding of %d bytes is %d long, over the stated overhead", len(msg), len(enc))
		}
		if i := bytes.IndexByte(enc, 0); i != len(enc)-1 {
			t.Fatalf("0x00 at %d of %d", i, len(enc))
		}
		got, err := frame.Decode(enc[:len(enc)-1])
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("round trip: %x, %v; want %x", got, err, msg)
		}
	})
}

// fuzzRig is a runner shared by the iterations of one fuzz process:
// mem source -> decode json -> expr map -> mem sink, dead letters to mem.
type fuzzRig struct {
	bus  *mem.Bus
	out  <-chan pipeline.Envelope
	dead <-chan pipeline.Envelope
	r    *pipeline.Runner
}

func startRig(f *testing.F) *fuzzRig {
	bus := mem.NewBus()
	g := pipeline.New().Connector("mem", mem.New(bus))
	g.Record("in").From("mem://in", codec.JSON{})
	g.Pipeline("p").From("in").
		Via(expr.Map(expr.MustCompile(expr.ExprLang, `{"id": "dev-" + device, "t": temp * 2}`, expr.Any))).
		To("mem://out", codec.JSON{})
	g.DeadLetterTo("mem://dead", codec.Raw{})
	out, unsubOut := bus.Subscribe("out", 16)
	dead, unsubDead := bus.Subscribe("dead", 16)
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{MaxPayload: 1024, Logger: discardLogger()})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	f.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.Errorf("run: %v", err)
		}
		unsubOut()
		unsubDead()
	})
	deadline := time.Now().Add(10 * time.Second)
	for r.Ready() != nil {
		if time.Now().After(deadline) {
			f.Fatalf("runner not ready: %v", r.Ready())
		}
		time.Sleep(time.Millisecond)
	}
	return &fuzzRig{bus: bus, out: out, dead: dead, r: r}
}

// FuzzPipelineAccountsForEveryPayload publishes arbitrary payloads into a
// running pipeline (decode json, expr map, MaxPayload 1 KiB) and checks
// that each one comes out exactly once, either on the sink or as a dead
// letter naming the decode, receive or map stage, and that the runner
// keeps running.
func FuzzPipelineAccountsForEveryPayload(f *testing.F) {
	for _, s := range payloadSeeds {
		f.Add([]byte(s))
	}
	f.Add(bytes.Repeat([]byte("["), 2000))
	rg := startRig(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rg.bus.Publish(ctx, "in", &pipeline.Envelope{Payload: payload}); err != nil {
			t.Fatalf("publish: %v", err)
		}
		select {
		case <-rg.out:
		case d := <-rg.dead:
			dl := string(d.Payload)
			if !bytes.Contains(d.Payload, []byte(`"stage":"decode"`)) && !bytes.Contains(d.Payload, []byte(`"stage":"receive"`)) &&
				!bytes.Contains(d.Payload, []byte(`"stage":"1:map"`)) && !bytes.Contains(d.Payload, []byte(`"stage":"encode mem://out"`)) {
				t.Fatalf("dead letter without a known stage: %s", dl)
			}
		case <-ctx.Done():
			t.Fatalf("payload %q neither delivered nor dead-lettered (ready: %v)", payload, rg.r.Ready())
		}
		select {
		case e := <-rg.out:
			t.Fatalf("second output %q for one payload", e.Payload)
		case e := <-rg.dead:
			t.Fatalf("second dead letter %q for one payload", e.Payload)
		default:
		}
	})
}
