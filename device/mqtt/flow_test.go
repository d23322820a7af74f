package mqtt_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/device/binflat"
	"github.com/aimdb-dev/aimdb-flow/device/flow"
	"github.com/aimdb-dev/aimdb-flow/device/internal/alloctest"
	"github.com/aimdb-dev/aimdb-flow/device/jsonflat"
	"github.com/aimdb-dev/aimdb-flow/device/mqtt"
	"github.com/aimdb-dev/aimdb-flow/device/value"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

// thermostat is the device flow of the package example: readings are
// filtered into alerts published over MQTT, and a setpoint subscription
// feeds a record that a pipeline applies.
type thermostat struct {
	f        *flow.Flow
	readings *flow.Record
	sink     *mqtt.Sink
	setpoint *mqtt.RecordSource
	target   float64 // the last setpoint applied
	applies  int
	obj      *value.Object
}

func newThermostat(t testing.TB, qos mqtt.QoS, maxInflight int, wire flow.Codec) (*thermostat, *mqtt.Client) {
	th := &thermostat{obj: value.NewObject(4, 32)}
	th.f = flow.New(flow.Config{MaxFields: 8, ArenaBytes: 96, Scratch: 32})
	th.readings = th.f.Record("sensor.temp", buffer.Config{Kind: buffer.Mailbox})
	setpoints := th.f.Record("setpoint", buffer.Config{Kind: buffer.Latest})
	th.setpoint = mqtt.NewRecordSource(setpoints, jsonflat.Codec{}, 4, 32)
	c, err := mqtt.New(mqtt.Config{ClientID: "d-1", MaxInflight: maxInflight, KeepAlive: time.Hour,
		Subscriptions: []mqtt.Subscription{{Topic: "devices/d-1/setpoint", QoS: mqtt.QoS1, Handler: th.setpoint}}})
	if err != nil {
		t.Fatal(err)
	}
	th.sink = mqtt.NewSink(c, mqtt.SinkOptions{Codec: wire, QoS: qos, MaxPayload: 96, Clock: func() time.Duration { return t0 }})
	th.f.Pipeline("alerts").From(th.readings).
		Filter(`temp > 25.0`).
		Map(`{"device": device, "temp": temp, "alert": true}`).
		To("alerts/d-1", th.sink)
	th.f.Pipeline("apply").From(setpoints).
		To("", flow.SinkFunc(func(_ context.Context, topic []byte, o *value.Object) error {
			v, _ := o.Lookup("target")
			th.target, _ = v.Num()
			th.applies++
			return nil
		}))
	if err := th.f.Validate(); err != nil {
		t.Fatal(err)
	}
	return th, c
}

var deviceName = []byte("d-1")

func (th *thermostat) read(t testing.TB, temp float64) {
	th.obj.Reset()
	th.obj.Set("device", value.BytesOf(deviceName))
	th.obj.Set("temp", value.FloatOf(temp))
	if err := th.readings.Write(context.Background(), "sensors/d-1/temp", th.obj); err != nil {
		t.Fatal(err)
	}
}

func TestFlowSinkAndSource(t *testing.T) {
	th, c := newThermostat(t, mqtt.QoS1, 4, jsonflat.Codec{})
	p := newPeer(mqtt.V311)
	var published []string
	p.onPublish = func(pk *mqtt.Packet) { published = append(published, string(pk.Topic)+" "+string(pk.Payload)) }
	if err := c.Connect(p, t0); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, temp := range []float64{20, 26.5, 31} {
		th.read(t, temp)
		if _, err := th.f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	p.publish("devices/d-1/setpoint", `{"target":21.5}`, 1, 9)
	p.publish("devices/d-1/setpoint", `not json`, 1, 10)
	if err := c.Poll(t0); err != nil {
		t.Fatal(err)
	}
	if _, err := th.f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	want := `alerts/d-1 {"device":"d-1","temp":26.5,"alert":true}|alerts/d-1 {"device":"d-1","temp":31,"alert":true}`
	if got := strings.Join(published, "|"); got != want {
		t.Fatalf("published\n%s\nwant\n%s", got, want)
	}
	if th.applies != 1 || th.target != 21.5 {
		t.Fatalf("applied %d setpoints, target %v", th.applies, th.target)
	}
	// The undecodable setpoint is counted and acknowledged (redelivery
	// would not fix it).
	if th.setpoint.DecodeErrors() != 1 || len(p.pubackIDs) != 2 || c.Pending() != 0 {
		t.Fatalf("decode errors %d, acks %v, pending %d", th.setpoint.DecodeErrors(), p.pubackIDs, c.Pending())
	}
}

// With a full in-flight window the sink polls the client until a PUBACK
// frees a slot: the pipeline slows down, no record is dropped.
func TestFlowSinkBackpressure(t *testing.T) {
	th, c := newThermostat(t, mqtt.QoS1, 1, jsonflat.Codec{})
	p := newPeer(mqtt.V311)
	if err := c.Connect(p, t0); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		th.read(t, 30+float64(i))
		if _, err := th.f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if p.publishes != 5 || c.Stats().Acked != 4 || c.Pending() != 1 {
		t.Fatalf("%d publishes, stats %+v, pending %d", p.publishes, c.Stats(), c.Pending())
	}
	// A broker that stops acknowledging: Send gives up when ctx ends, and
	// the pipeline counts the record as an error.
	p.dropPubacks = 1 << 30
	if err := c.Poll(t0); err != nil {
		t.Fatal(err)
	}
	th.read(t, 40) // takes the last free slot
	if _, err := th.f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	th.read(t, 41)
	th.f.Poll(cctx)
	if err := th.sink.Send(cctx, []byte("t"), th.obj); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with a full window and a cancelled context: %v", err)
	}
}

// A device pipeline publishing through the sink and fed by a
// subscription allocates nothing per record (binflat on the wire: jsonflat
// float formatting allocates once under TinyGo, see docs/device.md).
func TestFlowZeroAllocs(t *testing.T) {
	th, c := newThermostat(t, mqtt.QoS1, 2, binflat.Codec{})
	p := newPeer(mqtt.V311)
	p.emptyErr = nil // see TestZeroAllocsPerMessage
	if err := c.Connect(p, t0); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	setpoint := []byte(`{"target":22}`)
	allocs := alloctest.PerRun(200, func() {
		th.read(t, 30)
		if _, err := th.f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		p.in = mqtt.AppendPublish(p.in, mqtt.V311, []byte("devices/d-1/setpoint"), setpoint, 1, false, false, 3)
		p.pubackIDs = p.pubackIDs[:0]
		if err := c.Poll(t0); err != nil {
			t.Fatal(err)
		}
		if _, err := th.f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per record", allocs)
	}
	if p.publishes != 201 || c.Pending() != 0 || th.applies != 201 || th.target != 22 || th.setpoint.DecodeErrors() != 0 {
		t.Fatalf("%d publishes, pending %d, %d setpoints applied", p.publishes, c.Pending(), th.applies)
	}
}
