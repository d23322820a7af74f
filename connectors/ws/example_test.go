package ws_test

import (
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/connectors/ws"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// A graph that subscribes to a ticker stream and sends the readings above
// a threshold back as binary messages, composed in Go. In a .flow file:
//
//	connector feed "wss://stream.example.com/v1" token "${FEED_TOKEN}"
//	record ticks { from "feed://ticker" decode json subscribe `{"op":"sub","ch":"ticker"}` }
func Example() {
	feed := ws.New(ws.Config{
		URL:          "wss://stream.example.com/v1",
		Token:        kit.NewSecret("token from ${FEED_TOKEN}"),
		PingInterval: 15 * time.Second,
	})
	g := pipeline.New().Connector("feed", feed)
	g.Record("ticks").From("feed://ticker", codec.JSON{},
		pipeline.Options(ws.In{Subscribe: `{"op":"sub","ch":"ticker"}`}))
	g.Pipeline("high").From("ticks").
		To("feed://alerts", codec.JSON{}, pipeline.Options(ws.Out{Binary: true}))
	_ = g
}
