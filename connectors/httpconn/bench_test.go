package httpconn

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// BenchmarkWebhookPublish measures one Publish (a keep-alive POST answered
// 204) at a time, and with 8 publishers sharing the connector.
func BenchmarkWebhookPublish(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	bl, err := New(srv.URL, Config{})
	if err != nil {
		b.Fatal(err)
	}
	cn, err := bl.Build(context.Background(), pipeline.BuildEnv{})
	if err != nil {
		b.Fatal(err)
	}
	defer cn.Close(context.Background())
	payload := []byte(`{"device":"d-17","temp":23.5,"seq":1,"ts":1700000000123}`)
	b.Run("serial", func(b *testing.B) {
		env := &pipeline.Envelope{Payload: payload}
		for b.Loop() {
			if err := cn.Publish(context.Background(), "v1/alerts/d-17", nil, env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel8", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			env := &pipeline.Envelope{Payload: payload}
			for pb.Next() {
				if err := cn.Publish(context.Background(), "v1/alerts/d-17", nil, env); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkIngest measures POST -> 202 through the runner into a record a
// Go reader drains, over one keep-alive client connection.
func BenchmarkIngest(b *testing.B) {
	ingest, err := New("http://127.0.0.1:0", Config{})
	if err != nil {
		b.Fatal(err)
	}
	g := pipeline.New().Connector("ingest", ingest)
	g.Record("r").From("ingest:///r", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	rd, _ := r.Subscribe("r")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	go func() {
		for {
			env, err := rd.Recv(ctx)
			if err != nil {
				return
			}
			env.Ack.Done()
		}
	}()
	for r.Ready() != nil {
		time.Sleep(time.Millisecond)
	}
	url := "http://" + ingest.Addr().String() + "/r"
	body := `{"device":"d-17","temp":23.5,"seq":1,"ts":1700000000123}`
	client := &http.Client{}
	for b.Loop() {
		resp, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatal(resp.Status)
		}
	}
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
