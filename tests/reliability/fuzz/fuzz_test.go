package fuzz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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
// Every payload carries a unique id in a header (the rig's count of
// payloads published so far), which outputs and dead letters keep.
type fuzzRig struct {
	bus  *mem.Bus
	out  <-chan pipeline.Envelope
	dead <-chan pipeline.Envelope
	r    *pipeline.Runner
	sent int            // payloads published (the next id)
	seen map[string]int // id -> results (outputs + dead letters) received
}

// rigMaxPayload is the rig's RunOptions.MaxPayload.
const rigMaxPayload = 1024

// idHeader carries a payload's id through the pipeline.
const idHeader = "fuzz-id"

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
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{MaxPayload: rigMaxPayload, Logger: discardLogger()})
	if err != nil {
		f.Fatal(err)
	}
	rg := &fuzzRig{bus: bus, out: out, dead: dead, r: r, seen: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	f.Cleanup(func() {
		// Run returns once every record was drained to its sink: whatever
		// the pipeline was going to publish is in the channels now, so a
		// late duplicate cannot slip past this check.
		cancel()
		if err := <-done; err != nil {
			f.Errorf("run: %v", err)
		}
		for {
			select {
			case e := <-out:
				f.Errorf("output %q (id %q) after every payload was accounted for", e.Payload, headerOf(e, idHeader))
				continue
			case e := <-dead:
				f.Errorf("dead letter %s after every payload was accounted for", e.Payload)
				continue
			default:
			}
			break
		}
		if res := rg.results(); res != uint64(rg.sent) {
			f.Errorf("%d payloads published, %d results (outputs + dead letters) counted", rg.sent, res)
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
	return rg
}

// results returns the runner's count of outputs published to mem://out
// plus dead letters produced: one per payload when nothing is duplicated.
func (rg *fuzzRig) results() uint64 {
	s := rg.r.Stats()
	n := s.DeadLetters
	for _, l := range s.Links {
		if l.Direction == pipeline.Outbound && l.Link == "mem://out" {
			n += l.Messages
		}
	}
	return n
}

// inbound returns the runner's count of received payloads.
func (rg *fuzzRig) inbound() uint64 {
	var n uint64
	for _, l := range rg.r.Stats().Links {
		if l.Direction == pipeline.Inbound {
			n += l.Messages
		}
	}
	return n
}

func headerOf(e pipeline.Envelope, key string) string {
	for _, h := range e.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return ""
}

// mapModel is what the map `{"id": "dev-" + device, "t": temp * 2}` must
// produce for payload, worked out with encoding/json (independently of the
// pipeline's codec and evaluator). ok is false when the payload is not an
// object with a string device and a numeric temp that doubles to a finite
// number, or exceeds the rig's MaxPayload; exactT is false when temp is
// too large for its double to be compared exactly (integer overflow and
// float rounding differ between the languages there).
type mapModel struct {
	id     string
	t      float64
	ok     bool
	exactT bool
}

func modelOf(payload []byte) mapModel {
	if len(payload) > rigMaxPayload {
		return mapModel{}
	}
	var v any
	if err := json.Unmarshal(payload, &v); err != nil {
		return mapModel{}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return mapModel{}
	}
	device, ok1 := m["device"].(string)
	temp, ok2 := m["temp"].(float64)
	if !ok1 || !ok2 || math.IsInf(temp*2, 0) {
		return mapModel{}
	}
	return mapModel{id: "dev-" + device, t: temp * 2, ok: true, exactT: math.Abs(temp) <= 1<<52}
}

// checkOutput checks an output's content against the model.
func checkOutput(t *testing.T, payload, out []byte, want mapModel) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("payload %q: output %q is not a JSON object: %v", payload, out, err)
	}
	id, okID := got["id"].(string)
	tv, okT := got["t"].(float64)
	if len(got) != 2 || !okID || !okT || !strings.HasPrefix(id, "dev-") {
		t.Fatalf("payload %q: output %q, want exactly {\"id\": \"dev-...\", \"t\": number}", payload, out)
	}
	if !want.ok {
		return
	}
	if id != want.id {
		t.Fatalf("payload %q: output id %q, want %q", payload, id, want.id)
	}
	if want.exactT && tv != want.t {
		t.Fatalf("payload %q: output t %v, want %v", payload, tv, want.t)
	}
}

// checkDeadLetter checks a dead letter's stage and that it carries the
// original payload (a prefix when oversized; none after the map, which
// replaced the payload by a value).
func checkDeadLetter(t *testing.T, payload, dl []byte) {
	t.Helper()
	var d pipeline.DeadLetter
	if err := json.Unmarshal(dl, &d); err != nil {
		t.Fatalf("payload %q: dead letter %q is not JSON: %v", payload, dl, err)
	}
	orig := []byte(d.Payload)
	if d.PayloadBase64 != nil {
		orig = d.PayloadBase64
	}
	switch d.Stage {
	case "decode", "1:map":
		if !bytes.Equal(orig, payload) {
			t.Fatalf("payload %q: %s dead letter carries payload %q", payload, d.Stage, orig)
		}
	case "receive":
		// The first rigMaxPayload bytes; a text payload may be cut up to
		// 3 bytes earlier, at a rune boundary.
		if len(payload) <= rigMaxPayload || !bytes.HasPrefix(payload, orig) || len(orig) > rigMaxPayload ||
			len(orig) < rigMaxPayload-(utf8.UTFMax-1) || d.PayloadBase64 != nil && len(orig) != rigMaxPayload {
			t.Fatalf("payload %q (%d bytes): receive dead letter carries %d bytes", payload, len(payload), len(orig))
		}
	case "encode mem://out":
	default:
		t.Fatalf("payload %q: dead letter without a known stage: %s", payload, dl)
	}
}

// FuzzPipelineAccountsForEveryPayload publishes arbitrary payloads, each
// with a unique id, into a running pipeline (decode json, expr map,
// MaxPayload 1 KiB) and checks that each id comes out exactly once: either
// on the sink, with the content the map must produce for it (checked
// against a model built on encoding/json: required when the payload is an
// object with a string device and a number temp), or as a dead letter
// naming the decode, receive, map or encode stage and carrying the
// original payload. After its result the runner's counters must show
// exactly one result per payload published so far (a second output or dead
// letter is counted before it is received); the rig's cleanup stops the
// runner, which drains everything, and fails on any result left over.
func FuzzPipelineAccountsForEveryPayload(f *testing.F) {
	for _, s := range payloadSeeds {
		f.Add([]byte(s))
	}
	f.Add(bytes.Repeat([]byte("["), 2000))
	f.Add([]byte(`{"temp":4503599627370496,"device":"big"}`))
	rg := startRig(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		id := strconv.Itoa(rg.sent)
		rg.sent++
		env := &pipeline.Envelope{Payload: payload, Headers: []pipeline.Header{{Key: idHeader, Value: id}}}
		if err := rg.bus.Publish(ctx, "in", env); err != nil {
			t.Fatalf("publish: %v", err)
		}
		want := modelOf(payload)
		var got pipeline.Envelope
		isOut := false
		select {
		case got = <-rg.out:
			isOut = true
		case got = <-rg.dead:
		case <-ctx.Done():
			t.Fatalf("payload %q (id %s) neither delivered nor dead-lettered (ready: %v)", payload, id, rg.r.Ready())
		}
		gid := headerOf(got, idHeader)
		rg.seen[gid]++
		if gid != id {
			t.Fatalf("payload %q (id %s): a result for id %q (seen %d times) arrived instead: %q", payload, id, gid, rg.seen[gid], got.Payload)
		}
		if isOut {
			checkOutput(t, payload, got.Payload, want)
		} else {
			if want.ok {
				t.Fatalf("payload %q must map to {id: %q, t: %v} but was dead-lettered: %s", payload, want.id, want.t, got.Payload)
			}
			checkDeadLetter(t, payload, got.Payload)
		}
		// Quiescence: the runner received every payload and counted exactly
		// one result for each (an output is counted right after the sink
		// took it; a dead letter just before it is published).
		deadline := time.Now().Add(10 * time.Second)
		for rg.inbound() < uint64(rg.sent) || rg.results() < uint64(rg.sent) {
			if time.Now().After(deadline) {
				t.Fatalf("counters did not settle: %d published, %d received, %d results", rg.sent, rg.inbound(), rg.results())
			}
			runtime.Gosched()
		}
		if res := rg.results(); res != uint64(rg.sent) {
			t.Fatalf("payload %q (id %s): %d results counted for %d payloads: a duplicate", payload, id, res, rg.sent)
		}
		select {
		case e := <-rg.out:
			t.Fatalf("second output %q (id %q) for payload %q", e.Payload, headerOf(e, idHeader), payload)
		case e := <-rg.dead:
			t.Fatalf("second dead letter %q (id %q) for payload %q", e.Payload, headerOf(e, idHeader), payload)
		default:
		}
	})
}
