package kafka_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// A consume -> filter -> produce pipeline with at-least-once delivery:
// offsets of "readings" are committed only once the alert (or the dead
// letter) for each record was confirmed by the brokers.
func ExampleNew() {
	b, err := kafka.New(kafka.Config{
		Brokers:        []string{"127.0.0.1:9092"},
		Group:          "alerts",
		CommitInterval: time.Second,
		Writer:         kafka.WriterOptions{Acks: kafka.AcksAll, Compression: "zstd", Linger: 5 * time.Millisecond},
	})
	if err != nil {
		log.Fatal(err)
	}
	g := pipeline.New().Connector("kafka", b)
	g.Record("readings").From("kafka://readings", codec.JSON{})
	g.Pipeline("hot").From("readings").
		Via(stages.FilterValue(func(m map[string]any) bool { t, _ := m["temp"].(float64); return t > 25 })).
		To("kafka://alerts", codec.JSON{}, pipeline.Key(func(env *pipeline.Envelope) ([]byte, error) {
			d, _ := env.Value.(map[string]any)["device"].(string)
			return []byte(d), nil
		}))
	g.DeadLetterTo("kafka://alerts.dlq", codec.Raw{})

	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := r.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// The DSL declares the same connector with settings; secrets come from the
// environment through ${ENV} interpolation before they reach Factory.
func ExampleFactory() {
	b, err := kafka.Factory("kafka://broker1:9092,broker2:9092", pipeline.Params{
		"group":    "alerts",
		"tls":      "true",
		"sasl":     "scram-sha-512",
		"username": "svc-alerts",
		"password": "from ${KAFKA_PASSWORD}",
		"acks":     "all",
		"linger":   "10ms",
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = b.Scheme() // "kafka"
}
