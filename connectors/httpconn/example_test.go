package httpconn_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	httpconn "github.com/aimdb-dev/aimdb-flow/connectors/httpconn"
	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/connectors/mqtt"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// HTTP ingest -> filter -> in-process bus (swap mem for an mqtt connector
// to publish the alerts to a broker). Port 0 picks a free port; Addr tells
// which.
func Example() {
	ingest, err := httpconn.New("http://127.0.0.1:0", httpconn.Config{Token: kit.NewSecret("s3cret"), MaxBody: 64 << 10})
	if err != nil {
		panic(err)
	}
	bus := mem.NewBus()
	g := pipeline.New().Connector("ingest", ingest).Connector("", mem.New(bus))
	g.Record("sensor.temp").From("ingest:///ingest/sensor.temp", codec.JSON{})
	g.Pipeline("alerts").From("sensor.temp").
		Via(stages.FilterValue(func(m map[string]any) bool { t, _ := m["temp"].(float64); return t > 25 })).
		To("mem://alerts/{device}", codec.JSON{})

	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	alerts, unsubscribe := bus.Subscribe("alerts/#", 10)
	defer unsubscribe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	for r.Ready() != nil {
		time.Sleep(time.Millisecond)
	}

	url := "http://" + ingest.Addr().String() + "/ingest/sensor.temp"
	for _, body := range []string{`{"device":"d-1","temp":21.5}`, `{"device":"d-2","temp":30.5}`} {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cret")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	alert := <-alerts
	fmt.Println(alert.Topic, string(alert.Payload))

	cancel()
	fmt.Println("run:", <-done)
	// Output:
	// 202 Accepted
	// 202 Accepted
	// alerts/d-2 {"device":"d-2","temp":30.5}
	// run: <nil>
}

// HTTP ingest -> filter -> MQTT, on an in-process MQTT 5 broker (use
// mqtt.New with a broker URL in production). The same connector also
// subscribes to the alerts, so the example can show what reached MQTT.
func Example_mqtt() {
	ingest, err := httpconn.New("http://127.0.0.1:0", httpconn.Config{})
	if err != nil {
		panic(err)
	}
	broker, err := mqtt.NewEmbedded("127.0.0.1:0", mqtt.Config{})
	if err != nil {
		panic(err)
	}
	g := pipeline.New().Connector("ingest", ingest).Connector("broker", broker)
	g.Record("sensor.temp").From("ingest:///ingest/sensor.temp", codec.JSON{})
	g.Pipeline("alerts").From("sensor.temp").
		Via(stages.FilterValue(func(m map[string]any) bool { t, _ := m["temp"].(float64); return t > 25 })).
		To("broker://alerts/{device}", codec.JSON{})
	g.Record("seen").From("broker://alerts/+", codec.JSON{}) // what reached the broker

	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	seen, err := r.Subscribe("seen")
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	for r.Ready() != nil {
		time.Sleep(time.Millisecond)
	}

	url := "http://" + ingest.Addr().String() + "/ingest/sensor.temp"
	for _, body := range []string{`{"device":"d-1","temp":21.5}`, `{"device":"d-2","temp":30.5}`} {
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	env, err := seen.Recv(rctx)
	if err != nil {
		panic(err)
	}
	env.Ack.Done()
	fmt.Println(env.Topic, env.Value)

	cancel()
	fmt.Println("run:", <-done)
	// Output:
	// 202 Accepted
	// 202 Accepted
	// alerts/d-2 map[device:d-2 temp:30.5]
	// run: <nil>
}
