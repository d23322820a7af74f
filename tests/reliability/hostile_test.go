package reliability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

const hostileFlow = `connector mqtt "${MQTT_URL}" client_id "hostile" reconnect_max 300ms

deadletter "mqtt://dead/{topic}" encode raw

record in {
  from "mqtt://in/#" decode json qos 1
}

pipeline alerts {
  from in
  filter ` + "`temp > 25.0`" + `
  map ` + "`{\"id\": \"dev-\" + device, \"temp\": temp, \"seq\": seq}`" + `
  to "mqtt://out/{seq}" encode json qos 1
}
`

// hostileCase is one bad inbound message and the dead letter it must
// become.
type hostileCase struct {
	name    string
	payload []byte
	stage   string // DeadLetter.Stage
	errHas  string // substring of DeadLetter.Error
	// pipeline is set for stage errors (decode/receive failures belong to
	// the record and link instead).
	pipeline string
}

func nested(depth int) []byte {
	return []byte(`{"temp":30,"device":"d","seq":1,"x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`)
}

// TestHostileInputDeadLettersWithProvenance sends, through mosquitto into
// a .flow pipeline (decode json -> expr filter -> expr map -> MQTT), one
// hostile message after another, each followed by a good record: malformed
// JSON, an empty payload, invalid UTF-8, an oversized payload (over
// RunOptions.MaxPayload), 20000-deep nesting, wrong types and missing
// fields in the filter, a wrong type in the map, a non-object document.
// Each becomes exactly one dead letter naming its stage, error, topic
// and original payload (base64 when not UTF-8); every good record arrives;
// every inbound message is acknowledged to the source (none rejected, so
// the stream never stalls); the runner is still running at the end.
func TestHostileInputDeadLettersWithProvenance(t *testing.T) {
	const maxPayload = 64 << 10
	cases := []hostileCase{
		{name: "malformed-json", payload: []byte(`{"temp": 30, "device": `), stage: "decode", errHas: "unexpected end"},
		{name: "empty", payload: []byte{}, stage: "decode", errHas: ""},
		{name: "not-json", payload: []byte("temp=30"), stage: "decode", errHas: "invalid character"},
		{name: "invalid-utf8", payload: []byte{0xff, 0xfe, 0xfd, '{', 0x80}, stage: "decode", errHas: "invalid character"},
		{name: "oversized", payload: append(append([]byte(`{"temp":30,"device":"big","seq":1,"pad":"`), bytes.Repeat([]byte("x"), maxPayload)...), `"}`...),
			stage: "receive", errHas: "payload too large"},
		{name: "deep-nesting", payload: nested(20000), stage: "decode", errHas: "nesting too deep"},
		{name: "string-temp", payload: []byte(`{"temp":"hot","device":"d-1","seq":1}`), stage: "1:filter", errHas: "temp > 25.0", pipeline: "alerts"},
		{name: "missing-temp", payload: []byte(`{"device":"d-1","seq":1}`), stage: "1:filter", errHas: "temp > 25.0", pipeline: "alerts"},
		{name: "array-doc", payload: []byte(`[1,2,3]`), stage: "1:filter", errHas: "temp > 25.0", pipeline: "alerts"},
		{name: "number-device", payload: []byte(`{"temp":30,"device":7,"seq":1}`), stage: "2:map", errHas: "\"dev-\" + device", pipeline: "alerts"},
	}
	br := mqtttest.Start(t, mqtttest.Options{})
	var src *probe
	g, err := dsl.Load(dsl.Options{
		Getenv: func(k string) (string, bool) {
			if k == "MQTT_URL" {
				return br.URL(), true
			}
			return "", false
		},
		WrapConnector: func(name, _ string, b pipeline.Builder) pipeline.Builder {
			src = newProbe(b)
			return src
		},
	}, dsl.Source{Name: "hostile.flow", Src: []byte(hostileFlow)})
	if err != nil {
		t.Fatal(err)
	}
	dead := make(chan mqttMsg, 100)
	far := newMQTTClient(t, br.URL(), clientOpts{ID: "hostile-far", Subscribe: []string{"out/#", "dead/#"}})
	run := start(t, g, pipeline.RunOptions{MaxPayload: maxPayload})
	waitFor(t, 15*time.Second, "runner ready", func() bool { return run.r.Ready() == nil })
	pub := newMQTTClient(t, br.URL(), clientOpts{ID: "hostile-producer"})

	good := map[int]bool{}
	recv := func(what string, pred func(m mqttMsg) bool) mqttMsg {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case m := <-far.ch:
				if strings.HasPrefix(m.Topic, "dead/") {
					dead <- m
				} else {
					good[seqOf(m.Payload)] = true
				}
				if pred(m) {
					return m
				}
			case <-deadline:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	for i, c := range cases {
		topic := "in/" + c.name
		pub.publish(topic, c.payload)
		seq := 1000 + i
		pub.publish("in/good", []byte(fmt.Sprintf(`{"temp":30.5,"device":"d-%d","seq":%d}`, i, seq)))
		recv("good record after "+c.name, func(m mqttMsg) bool { return m.Topic == fmt.Sprintf("out/%d", seq) })
	}
	// Collect the dead letters (they may interleave with good records).
	got := map[string]pipeline.DeadLetter{}
	for len(got) < len(cases) {
		var m mqttMsg
		select {
		case m = <-dead:
		default:
			m = recv(fmt.Sprintf("dead letters (%d of %d)", len(got), len(cases)), func(m mqttMsg) bool { return strings.HasPrefix(m.Topic, "dead/") })
			<-dead
		}
		var d pipeline.DeadLetter
		if err := json.Unmarshal(m.Payload, &d); err != nil {
			t.Fatalf("dead letter on %s is not JSON: %v: %q", m.Topic, err, m.Payload)
		}
		if m.Topic != "dead/"+d.Topic {
			t.Errorf("dead letter for %s published on %s", d.Topic, m.Topic)
		}
		if _, dup := got[d.Topic]; dup {
			t.Errorf("two dead letters for %s", d.Topic)
		}
		got[d.Topic] = d
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, ok := got["in/"+c.name]
			if !ok {
				t.Fatalf("no dead letter; got %v", keys(got))
			}
			if d.Stage != c.stage || !strings.Contains(d.Error, c.errHas) || d.Error == "" {
				t.Errorf("stage %q error %q, want stage %q error containing %q", d.Stage, d.Error, c.stage, c.errHas)
			}
			if d.Pipeline != c.pipeline {
				t.Errorf("pipeline %q, want %q", d.Pipeline, c.pipeline)
			}
			if c.pipeline == "" && (d.Record != "in" || d.Link != "mqtt://in/#") {
				t.Errorf("record %q link %q, want in and mqtt://in/#", d.Record, d.Link)
			}
			orig := []byte(d.Payload)
			if d.PayloadBase64 != nil {
				orig = d.PayloadBase64
			}
			// A dead letter keeps the first 1 KiB of a payload and records
			// its size.
			want := c.payload[:min(len(c.payload), pipeline.DefaultDeadLetterPayload)]
			if !bytes.Equal(orig, want) {
				t.Errorf("dead letter payload %.80q, want the original %.80q", orig, want)
			}
			if d.PayloadSize != len(c.payload) || d.PayloadTruncated != (len(c.payload) > pipeline.DefaultDeadLetterPayload) {
				t.Errorf("dead letter payload_size %d truncated %v, want %d, %v", d.PayloadSize, d.PayloadTruncated, len(c.payload), len(c.payload) > pipeline.DefaultDeadLetterPayload)
			}
		})
	}
	for i := range cases {
		if !good[1000+i] {
			t.Errorf("good record %d missing", 1000+i)
		}
	}
	run.alive(t)
	if err := run.r.Ready(); err != nil {
		t.Fatalf("not ready after hostile input: %v", err)
	}
	// Every inbound message was acknowledged (dead-lettered ones too).
	waitFor(t, 5*time.Second, "every message acked at the source", func() bool {
		return sumCounts(src.acked) == 2*len(cases)
	})
	if n := sumCounts(src.nacked); n != 0 {
		t.Errorf("%d messages rejected", n)
	}
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	if s := run.r.Stats(); s.DeadLetters != uint64(len(cases)) {
		t.Errorf("stats: %d dead letters, want %d", s.DeadLetters, len(cases))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestInvalidUTF8InsideJSONStringIsReplaced documents the other side of
// invalid UTF-8: inside a JSON string it is not an error (encoding/json
// semantics): each bad byte becomes U+FFFD and the record flows.
func TestInvalidUTF8InsideJSONStringIsReplaced(t *testing.T) {
	br := mqtttest.Start(t, mqtttest.Options{})
	g, err := dsl.Load(dsl.Options{Getenv: func(k string) (string, bool) { return br.URL(), k == "MQTT_URL" }},
		dsl.Source{Name: "hostile.flow", Src: []byte(hostileFlow)})
	if err != nil {
		t.Fatal(err)
	}
	far := newMQTTClient(t, br.URL(), clientOpts{ID: "utf8-far", Subscribe: []string{"out/#", "dead/#"}})
	run := start(t, g, pipeline.RunOptions{})
	waitFor(t, 15*time.Second, "runner ready", func() bool { return run.r.Ready() == nil })
	pub := newMQTTClient(t, br.URL(), clientOpts{ID: "utf8-pub"})
	pub.publish("in/x", []byte("{\"temp\":30,\"device\":\"a\xffb\",\"seq\":7}"))
	select {
	case m := <-far.ch:
		if m.Topic != "out/7" || !bytes.Contains(m.Payload, []byte("dev-a\uFFFDb")) {
			t.Fatalf("got %s %q", m.Topic, m.Payload)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("record did not arrive")
	}
}

// TestTemplateEnvelopeFieldsWithoutMapValue is the regression test for a
// crash found by TestHostileInputDeadLettersWithProvenance: rendering
// {topic}, {key} or {partition} for an envelope whose value is not a map
// (an undecodable payload on its way to `deadletter "mqtt://dead/{topic}"`,
// or any raw record) panicked with "interface conversion: interface {} is
// nil" and took the whole process down.
func TestTemplateEnvelopeFieldsWithoutMapValue(t *testing.T) {
	tmpl := pipeline.MustTemplate("dead/{topic}/{key}/{partition}")
	for _, v := range []any{nil, []byte("raw"), []any{1.0}, "str", 3.5} {
		env := &pipeline.Envelope{Value: v, Topic: "in/x", Key: []byte("k"), Partition: 2}
		got, err := tmpl.Render(env)
		if err != nil || got != "dead/in/x/k/2" {
			t.Errorf("value %#v: %q, %v", v, got, err)
		}
	}
	// A map value's own field wins over the envelope's.
	env := &pipeline.Envelope{Value: map[string]any{"topic": "mine"}, Topic: "in/x", Key: []byte("k")}
	if got, _ := pipeline.MustTemplate("{topic}").Render(env); got != "mine" {
		t.Errorf("map field: %q", got)
	}
}
