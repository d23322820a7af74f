// Command mqtt is the example device pipeline over MQTT, for a
// microcontroller under TinyGo (it also runs under Go):
//
//	sensor readings -> filter/map (device/expr) -> alerts (ring) -> MQTT PUBLISH QoS 1 "alerts/d-1" (flat JSON)
//	MQTT SUBSCRIBE "devices/d-1/setpoint" (QoS 1) -> setpoint record (latest) -> apply
//
// The device announces itself with a retained "online" on
// devices/d-1/status (its will says "offline"), sends its alerts, waits
// until every alert is acknowledged and a setpoint has arrived, then
// disconnects.
//
// On cortex-m-qemu the MQTT link is the board's second UART, which qemu
// connects straight to the broker's TCP port; the first UART (println) is
// the console:
//
//	tinygo build -target=cortex-m-qemu -o mqtt.elf ./examples/device/mqtt
//	mosquitto_pub -r -t devices/d-1/setpoint -m '{"target":21.5}'
//	qemu-system-arm -machine lm3s6965evb -semihosting -display none -monitor none \
//		-serial stdio -serial tcp:127.0.0.1:1883 -kernel mqtt.elf
//
// On a host it dials MQTT_BROKER (default 127.0.0.1:1883):
//
//	go run ./examples/device/mqtt
package main

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/aimdb-dev/aimdb-flow/device/flow"
	"github.com/aimdb-dev/aimdb-flow/device/jsonflat"
	"github.com/aimdb-dev/aimdb-flow/device/mqtt"
	"github.com/aimdb-dev/aimdb-flow/device/value"
	"github.com/aimdb-dev/aimdb-flow/examples/device/shared"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

// Readings is how many sensor readings the example takes.
const Readings = 40

func main() {
	rw, err := openTransport()
	if err != nil {
		println("transport:", err.Error())
		return
	}
	if err := run(rw, func(s string) { println(s) }); err != nil {
		println("error:", err.Error())
	}
}

// device is the example's state, allocated once.
type device struct {
	obj     *value.Object
	target  float64
	applied int
}

// run is the device program over the transport rw; log prints a line on
// the console.
func run(rw io.ReadWriter, log func(string)) error {
	start := time.Now()
	clock := func() time.Duration { return time.Since(start) } // monotonic, for the client's timers
	d := &device{obj: value.NewObject(4, 32)}
	f := flow.New(flow.Config{MaxFields: 8, ArenaBytes: 96, Scratch: 32})
	readings := f.Record("sensor.temp", buffer.Config{Kind: buffer.Mailbox})
	alerts := f.Record("alerts", buffer.Config{Kind: buffer.Ring, Size: 8})
	setpoints := f.Record("setpoint", buffer.Config{Kind: buffer.Latest})
	client, err := mqtt.New(mqtt.Config{
		ClientID:    "d-1",
		KeepAlive:   60 * time.Second,
		CleanStart:  true,
		MaxPacket:   160,
		MaxInflight: 4,
		Will:        &mqtt.Will{Topic: "devices/d-1/status", Payload: []byte("offline"), QoS: mqtt.QoS1, Retain: true},
		Subscriptions: []mqtt.Subscription{{
			Topic: "devices/d-1/setpoint", QoS: mqtt.QoS1,
			Handler: mqtt.NewRecordSource(setpoints, jsonflat.Codec{}, 4, 32),
		}},
	})
	if err != nil {
		return err
	}
	f.Pipeline("hot").From(readings).
		Filter(shared.HotFilter).
		Map(shared.AlertMap).
		Into("", alerts)
	f.Pipeline("uplink").From(alerts).To("alerts/d-1", mqtt.NewSink(client, mqtt.SinkOptions{Codec: jsonflat.Codec{}, QoS: mqtt.QoS1, Clock: clock}))
	f.Pipeline("apply").From(setpoints).To("", flow.SinkFunc(d.apply))
	if err := f.Validate(); err != nil {
		return err
	}
	if err := client.Connect(rw, clock()); err != nil {
		return err
	}
	if err := client.Publish([]byte("devices/d-1/status"), []byte("online"), mqtt.QoS1, true); err != nil {
		return err
	}
	ctx := context.Background()
	temp := int64(240) // tenths of a degree; a stand-in for an ADC reading
	for seq := int64(0); seq < Readings; seq++ {
		temp += (seq*37)%29 - 13 // the sensor example's deterministic wander
		d.obj.Reset()
		d.obj.Set("device", value.StringOf("d-1"))
		d.obj.Set("temp", value.FloatOf(float64(temp)/10))
		d.obj.Set("seq", value.IntOf(seq))
		if err := readings.Write(ctx, "sensors/d-1/temp", d.obj); err != nil {
			return err
		}
		if _, err := f.Poll(ctx); err != nil {
			return err
		}
		if err := client.Poll(clock()); err != nil {
			return err // a real device closes rw, reopens it and calls Connect again
		}
	}
	// Until every alert is acknowledged and a setpoint was applied.
	for client.Pending() > 0 || d.applied == 0 {
		if err := client.Poll(clock()); err != nil {
			return err
		}
		if _, err := f.Poll(ctx); err != nil {
			return err
		}
	}
	st := client.Stats()
	log("published " + strconv.FormatUint(st.Published, 10) + ", acknowledged " + strconv.FormatUint(st.Acked, 10) +
		", setpoint " + strconv.Itoa(int(d.target*10)/10) + "." + strconv.Itoa(int(d.target*10)%10))
	return client.Disconnect()
}

// apply is the setpoint pipeline's sink: a thermostat would act here.
func (d *device) apply(_ context.Context, _ []byte, o *value.Object) error {
	if v, ok := o.Lookup("target"); ok {
		d.target, _ = v.Num()
		d.applied++
	}
	return nil
}
