package mqtt_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/mqtt"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// A graph that publishes records to an in-process MQTT broker and reads
// them back through a wildcard subscription. With a real broker, use
// mqtt.Factory("mqtt://127.0.0.1:1883", pipeline.Params{"client_id": "edge-1"}).
func ExampleNewEmbedded() {
	b, err := mqtt.NewEmbedded("127.0.0.1:0", mqtt.Config{})
	if err != nil {
		panic(err)
	}
	g := pipeline.New().Connector("mqtt", b)
	g.Record("readings").To("mqtt://sensors/{device}/temp", codec.JSON{},
		pipeline.Options(mqtt.Out{QoS: 1}))
	g.Record("echo").From("mqtt://sensors/+/temp", codec.JSON{},
		pipeline.Options(mqtt.In{QoS: 1}))
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		panic(err)
	}
	echo, _ := r.Subscribe("echo")
	w, _ := r.Writer("readings")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for r.Ready() != nil {
		time.Sleep(10 * time.Millisecond)
	}
	_ = w.WriteValue(ctx, map[string]any{"device": "d1", "temp": 21.5})
	env, err := echo.Recv(ctx)
	if err != nil {
		panic(err)
	}
	env.Ack.Done()
	fmt.Println(env.Topic, env.Value.(map[string]any)["temp"])
	cancel()
	<-done
	// Output: sensors/d1/temp 21.5
}
