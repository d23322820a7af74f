package knx

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/knx/internal/knxdtest"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestBusToRecords writes group values with knxtool (groupswrite for
// short values, groupwrite for bytes) and checks what each inbound link
// is handed: typed JSON for links with a DPT, raw bytes without, only
// for the links whose pattern matches, and the dead-letter marker for a
// value that does not decode.
func TestBusToRecords(t *testing.T) {
	d := knxdtest.Start(t)
	col := newCollector()
	links := []pipeline.Subscription{
		sub(t, pipeline.Inbound, "1/1/1", pipeline.Params{"dpt": "1.001"}),
		sub(t, pipeline.Inbound, "1/2/*", pipeline.Params{"dpt": "9.001"}),
		sub(t, pipeline.Inbound, "2/0/1", pipeline.Params{"dpt": "5.001"}),
		sub(t, pipeline.Inbound, "2/0/2", pipeline.Params{"dpt": "16.000"}),
		sub(t, pipeline.Inbound, "2/0/3", nil),                               // raw
		sub(t, pipeline.Inbound, "2/0/4", pipeline.Params{"dpt": "232.600"}), // unknown main type: raw
		sub(t, pipeline.Inbound, "4/1000", pipeline.Params{"dpt": "7.001"}),  // two-level: 4/3/232
		sub(t, pipeline.Inbound, "2/0/5", pipeline.Params{"dpt": "18.001"}),
		sub(t, pipeline.Inbound, "2/0/6", pipeline.Params{"dpt": "14.056"}),
	}
	serve(t, New(testConfig(t, d.Endpoint())), links, col)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A second connector, on a tunnel of its own, answers as a device
	// would (knxtool has no plain response writer).
	pc, err := New(testConfig(t, d.Endpoint())).Build(ctx, pipeline.BuildEnv{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	other := pc.(*Conn)
	t.Cleanup(func() { _ = other.Close(context.Background()) })
	waitReady(t, other, true)
	respond := func(ga string, payload []byte) error {
		o, err := parseLinkOptions(pipeline.Outbound, ga, pipeline.Params{"service": "response"})
		if err != nil {
			return err
		}
		return other.Publish(ctx, ga, o, &pipeline.Envelope{Payload: payload})
	}

	type want struct {
		topic string
		json  map[string]any // typed links
		raw   []byte         // raw links
		group string
	}
	cases := []struct {
		name  string
		ga    string
		short bool
		data  []byte // nil: a GroupValueRead
		want  []want
	}{
		{"a read carries no value and is not dispatched", "1/2/3", true, nil, nil},
		{"a response from another tunnel is dispatched", "1/2/8", false, []byte{0x0c, 0x1a}, []want{{topic: "1/2/*", group: "1/2/8",
			json: map[string]any{"dpt": "9.001", "value": 21.0, "unit": "°C", "ga": "1/2/8", "service": "response"}}}},
		{"switch on (short)", "1/1/1", true, []byte{1}, []want{{topic: "1/1/1", group: "1/1/1",
			json: map[string]any{"dpt": "1.001", "value": true, "text": "on", "ga": "1/1/1", "service": "write"}}}},
		{"temperature by wildcard", "1/2/3", false, []byte{0x0c, 0x1a}, []want{{topic: "1/2/*", group: "1/2/3",
			json: map[string]any{"dpt": "9.001", "value": 21.0, "unit": "°C", "ga": "1/2/3", "service": "write"}}}},
		{"not matched by 1/2/*", "1/3/3", false, []byte{0x0c, 0x1a}, nil},
		{"percent", "2/0/1", false, []byte{0xff}, []want{{topic: "2/0/1", group: "2/0/1",
			json: map[string]any{"dpt": "5.001", "value": 100.0, "unit": "%", "ga": "2/0/1", "service": "write"}}}},
		{"string", "2/0/2", false, []byte("hello KNX\x00\x00\x00\x00\x00"), []want{{topic: "2/0/2", group: "2/0/2",
			json: map[string]any{"dpt": "16.000", "value": "hello KNX", "ga": "2/0/2", "service": "write"}}}},
		{"raw", "2/0/3", false, []byte{0xde, 0xad, 0xbe, 0xef}, []want{{topic: "2/0/3", group: "2/0/3", raw: []byte{0xde, 0xad, 0xbe, 0xef}}}},
		{"unknown DPT is raw", "2/0/4", false, []byte{1, 2, 3}, []want{{topic: "2/0/4", group: "2/0/4", raw: []byte{1, 2, 3}}}},
		{"two-level address", "4/3/232", false, []byte{0x01, 0x00}, []want{{topic: "4/1000", group: "4/1000",
			json: map[string]any{"dpt": "7.001", "value": 256.0, "unit": "pulses", "ga": "4/1000", "service": "write"}}}},
		{"scene control", "2/0/5", false, []byte{0x85}, []want{{topic: "2/0/5", group: "2/0/5",
			json: map[string]any{"dpt": "18.001", "value": map[string]any{"learn": true, "scene": 5.0}, "ga": "2/0/5", "service": "write"}}}},
		{"4-byte float", "2/0/6", false, []byte{0x42, 0x28, 0, 0}, []want{{topic: "2/0/6", group: "2/0/6",
			json: map[string]any{"dpt": "14.056", "value": 42.0, "unit": "W", "ga": "2/0/6", "service": "write"}}}},
	}
	seen := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var write error
			switch {
			case tc.data == nil:
				write = d.Read(ctx, tc.ga)
			case strings.HasPrefix(tc.name, "a response"):
				write = respond(tc.ga, tc.data)
			default:
				write = d.Write(ctx, tc.ga, tc.short, tc.data...)
			}
			if write != nil {
				t.Fatal(write)
			}
			// A marker write after each case: whatever the case dispatched
			// arrives before it (one tunnel, in order).
			if err := d.Write(ctx, "2/0/3", false, 0xaa); err != nil {
				t.Fatal(err)
			}
			envs := col.wait(t, seen+len(tc.want)+1)
			got := envs[seen : len(envs)-1]
			seen = len(envs)
			if string(envs[len(envs)-1].Payload) != "\xaa" {
				t.Fatalf("dispatched %d envelopes, want %d (last %q)", len(envs)-seen+len(got), len(tc.want), envs[len(envs)-1].Payload)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("dispatched %d envelopes, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				e := got[i]
				if e.Topic != w.topic {
					t.Errorf("topic %q, want %q", e.Topic, w.topic)
				}
				if g, _ := e.Headers.Get(HeaderGroup); g != w.group {
					t.Errorf("header %s %q, want %q", HeaderGroup, g, w.group)
				}
				if src, _ := e.Headers.Get(HeaderSource); !strings.HasPrefix(src, "0.0.") {
					t.Errorf("header %s %q, want a knxd client address", HeaderSource, src)
				}
				if w.json == nil {
					if string(e.Payload) != string(w.raw) {
						t.Errorf("payload % x, want % x", e.Payload, w.raw)
					}
					continue
				}
				var m map[string]any
				if err := json.Unmarshal(e.Payload, &m); err != nil {
					t.Fatalf("payload %q: %v", e.Payload, err)
				}
				delete(m, "src")
				if !reflect.DeepEqual(m, w.json) {
					t.Errorf("payload %s, want %v", e.Payload, w.json)
				}
			}
		})
	}

	t.Run("malformed value is dead-lettered", func(t *testing.T) {
		if err := d.Write(ctx, "1/2/7", false, 0x01); err != nil { // 1 byte for a 2-byte float
			t.Fatal(err)
		}
		rj := col.waitRejected(t, 1)[0]
		if !strings.Contains(rj.reason.Error(), "malformed group value") || !strings.Contains(rj.reason.Error(), "want 2") {
			t.Fatalf("rejected with %v, want the DPT's reason", rj.reason)
		}
		if string(rj.env.Payload) != "\x01" || rj.env.Topic == "" {
			t.Fatalf("rejected %q on %q, want the raw group value on its link", rj.env.Payload, rj.env.Topic)
		}
	})
}

// TestRecordsToBus publishes records through the connector and watches
// them on the bus with knxtool groupsocketlisten: encoded by each link's
// DPT; a value that does not fit is a permanent error, and nothing is
// sent.
func TestRecordsToBus(t *testing.T) {
	d := knxdtest.Start(t)
	b := New(testConfig(t, d.Endpoint()))
	pc, err := b.Build(context.Background(), pipeline.BuildEnv{Name: "knx"})
	if err != nil {
		t.Fatal(err)
	}
	c := pc.(*Conn)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	waitReady(t, c, true) // outbound only: connected by Build
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := d.Listen(t)
	l.Ready(ctx, t, d, "31/7/255")

	cases := []struct {
		name, ga, dpt, payload string
		bus                    string // the address as knxtool prints it, if not ga
		service                string // link setting
		want                   string // bytes as knxtool prints them
		permanent              string // error substring
	}{
		{name: "switch", ga: "1/1/1", dpt: "1.001", payload: `true`, want: "01"},
		{name: "switch by name", ga: "1/1/1", dpt: "1.001", payload: `{"value":"off"}`, want: "00"},
		{name: "temperature", ga: "1/2/4", dpt: "9.001", payload: `21.5`, want: "0C 33"},
		{name: "negative temperature", ga: "1/2/4", dpt: "9.001", payload: `{"value":-1}`, want: "87 9C"},
		{name: "percent", ga: "3/0/1", dpt: "5.001", payload: `100`, want: "FF"},
		{name: "signed", ga: "3/0/2", dpt: "6.001", payload: `-1`, want: "FF"},
		{name: "uint16", ga: "3/0/3", dpt: "7.001", payload: `258`, want: "01 02"},
		{name: "int16", ga: "3/0/4", dpt: "8.001", payload: `-2`, want: "FF FE"},
		{name: "uint32", ga: "3/0/5", dpt: "12.001", payload: `16909060`, want: "01 02 03 04"},
		{name: "int32", ga: "3/0/6", dpt: "13.010", payload: `-1`, want: "FF FF FF FF"},
		{name: "float32", ga: "3/0/7", dpt: "14.056", payload: `42`, want: "42 28 00 00"},
		{name: "string", ga: "3/0/8", dpt: "16.000", payload: `"OK"`, want: "4F 4B 00 00 00 00 00 00 00 00 00 00 00 00"},
		{name: "scene", ga: "3/0/9", dpt: "17.001", payload: `7`, want: "07"},
		{name: "scene control", ga: "3/0/10", dpt: "18.001", payload: `{"learn":true,"scene":3}`, want: "83"},
		{name: "hvac mode", ga: "3/0/11", dpt: "20.102", payload: `"economy"`, want: "03"},
		{name: "raw", ga: "3/0/12", payload: "\x01\x02", want: "01 02"},
		{name: "response", ga: "3/0/13", dpt: "5.010", service: "response", payload: `5`, want: "05"},
		{name: "free-form address", ga: "6400", bus: "3/1/0", dpt: "5.010", payload: `9`, want: "09"},
		{name: "percent out of range", ga: "3/0/1", dpt: "5.001", payload: `101`, permanent: "out of range"},
		{name: "string too long", ga: "3/0/8", dpt: "16.000", payload: `"fifteen chars!!"`, permanent: "longer than 14"},
		{name: "not a number", ga: "1/2/4", dpt: "9.001", payload: `"warm"`, permanent: "not a number"},
		{name: "not JSON", ga: "1/2/4", dpt: "9.001", payload: `warm`, permanent: "not a JSON value"},
		{name: "float16 range", ga: "1/2/4", dpt: "9.001", payload: `700000`, permanent: "2-byte float range"},
		{name: "fraction for an integer type", ga: "3/0/3", dpt: "7.001", payload: `1.5`, permanent: "not a whole number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.Params{}
			if tc.dpt != "" {
				p["dpt"] = tc.dpt
			}
			if tc.service != "" {
				p["service"] = tc.service
			}
			o, err := parseLinkOptions(pipeline.Outbound, tc.ga, p)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Publish(ctx, tc.ga, o, &pipeline.Envelope{Payload: []byte(tc.payload)})
			if tc.permanent != "" {
				if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), tc.permanent) {
					t.Fatalf("Publish: %v, want a permanent error containing %q", err, tc.permanent)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			bus := tc.ga
			if tc.bus != "" {
				bus = tc.bus
			}
			line := l.Expect(ctx, t, bus)
			verb := "Write from "
			if tc.service == "response" {
				verb = "Response from "
			}
			if !strings.HasPrefix(line, verb) || !strings.HasSuffix(strings.TrimSpace(line), ": "+tc.want) {
				t.Errorf("bus shows %q, want %s... %s", line, verb, tc.want)
			}
		})
	}
	if s := c.Stats(); s.Refused != 6 || s.Sent != uint64(len(cases)-6) {
		t.Errorf("stats %+v, want 6 refused, %d sent", s, len(cases)-6)
	}
}
