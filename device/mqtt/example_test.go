package mqtt_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aimdb-dev/aimdb-flow/device/flow"
	"github.com/aimdb-dev/aimdb-flow/device/jsonflat"
	"github.com/aimdb-dev/aimdb-flow/device/mqtt"
	"github.com/aimdb-dev/aimdb-flow/device/value"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

// A device flow over MQTT: readings above 25 °C go out as JSON alerts at
// QoS 1, and setpoints arrive on a subscription, feed a record and are
// applied by a pipeline. The transport here is the tests' in-memory broker
// stand-in (peer_test.go); on a board it is the network driver's TCP
// connection, on a host a net.Conn.
func Example() {
	start := time.Now()
	clock := func() time.Duration { return time.Since(start) } // the main loop's monotonic clock
	f := flow.New(flow.Config{MaxFields: 8, ArenaBytes: 96, Scratch: 32})
	readings := f.Record("sensor.temp", buffer.Config{Kind: buffer.Mailbox})
	setpoints := f.Record("setpoint", buffer.Config{Kind: buffer.Latest})

	client, err := mqtt.New(mqtt.Config{
		ClientID:  "d-1",
		KeepAlive: 30 * time.Second,
		Subscriptions: []mqtt.Subscription{{
			Topic:   "devices/d-1/setpoint",
			QoS:     mqtt.QoS1,
			Handler: mqtt.NewRecordSource(setpoints, jsonflat.Codec{}, 4, 32), // source of the setpoint record
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	f.Pipeline("alerts").From(readings).
		Filter(`temp > 25.0`).
		Map(`{"device": device, "temp": temp, "alert": true}`).
		To("alerts/d-1", mqtt.NewSink(client, mqtt.SinkOptions{Codec: jsonflat.Codec{}, QoS: mqtt.QoS1, Clock: clock}))
	f.Pipeline("apply").From(setpoints).
		To("", flow.SinkFunc(func(_ context.Context, _ []byte, o *value.Object) error {
			v, _ := o.Lookup("target")
			fmt.Println("setpoint", value.Format(v))
			return nil
		}))
	if err := f.Validate(); err != nil {
		fmt.Println(err)
		return
	}

	broker := newPeer(mqtt.V311)
	broker.onPublish = func(p *mqtt.Packet) { fmt.Printf("broker got %s %s\n", p.Topic, p.Payload) }
	if err := client.Connect(broker, clock()); err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	obj := value.NewObject(4, 32)
	for i, temp := range []float64{24.5, 26.5} {
		obj.Reset()
		obj.Set("device", value.StringOf("d-1"))
		obj.Set("temp", value.FloatOf(temp))
		readings.Write(ctx, "sensors/d-1/temp", obj)
		if i == 1 {
			broker.publish("devices/d-1/setpoint", `{"target":21.5}`, mqtt.QoS1, 1)
		}
		if err := client.Poll(clock()); err != nil { // on error: reconnect with a new transport
			fmt.Println(err)
			return
		}
		f.Poll(ctx)
	}
	client.Poll(clock()) // the alert's PUBACK
	fmt.Println("unacknowledged:", client.Pending())
	// Output:
	// broker got alerts/d-1 {"device":"d-1","temp":26.5,"alert":true}
	// setpoint 21.5
	// unacknowledged: 0
}
