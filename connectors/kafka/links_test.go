package kafka_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// TestValidateLinkOptions: typed Go options go through the same checks as
// DSL settings. Each case gives the typed options, and, where the DSL can
// write the same mistake, the settings that make it; both front ends must
// then report exactly the same error.
func TestValidateLinkOptions(t *testing.T) {
	b, err := kafka.New(kafka.Config{Brokers: []string{"127.0.0.1:1"}, Group: "g", Reader: kafka.ReaderOptions{MaxBytes: 2048}})
	if err != nil {
		t.Fatal(err)
	}
	noGroup, err := kafka.New(kafka.Config{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	in := func(r kafka.ReaderOptions) kafka.In { return kafka.In{ReaderOptions: r} }
	out := func(w kafka.WriterOptions) kafka.Out { return kafka.Out{WriterOptions: w} }
	tests := []struct {
		name   string
		b      *kafka.Builder
		dir    pipeline.Direction
		addr   string
		opts   any
		params pipeline.Params // the same mistake written as settings; nil: not expressible
		want   string          // "" = valid
	}{
		{name: "inbound ok", dir: pipeline.Inbound, addr: "orders", opts: in(kafka.ReaderOptions{StartOffset: kafka.StartLast, MinBytes: 1024, MaxWait: time.Second}),
			params: pipeline.Params{"start_offset": "last", "min_bytes": "1KiB", "max_wait": "1s"}},
		{name: "outbound ok", dir: pipeline.Outbound, addr: "alerts.{site}", opts: out(kafka.WriterOptions{Acks: kafka.AcksOne, Compression: "ZSTD", Linger: time.Millisecond}),
			params: pipeline.Params{"acks": "one", "compression": "ZSTD", "linger": "1ms"}},
		{name: "nil options", dir: pipeline.Outbound, addr: "alerts", opts: nil, params: pipeline.Params{}},

		{name: "min_bytes above the connector's max_bytes", dir: pipeline.Inbound, addr: "orders", opts: in(kafka.ReaderOptions{MinBytes: 4096}),
			params: pipeline.Params{"min_bytes": "4KiB"}, want: `min_bytes "4KiB": is above max_bytes (2KiB)`},
		{name: "max_bytes below the connector's min_bytes", dir: pipeline.Inbound, addr: "orders", opts: in(kafka.ReaderOptions{MaxBytes: 0, MinBytes: 3072}),
			params: pipeline.Params{"max_bytes": "0", "min_bytes": "3KiB"}, want: `min_bytes "3KiB": is above max_bytes (2KiB)`},
		{name: "bad inbound topic", dir: pipeline.Inbound, addr: "a/b", opts: in(kafka.ReaderOptions{}),
			params: pipeline.Params{}, want: `topic "a/b": invalid character '/' (allowed: letters, digits, '.', '_', '-')`},
		{name: "bad static outbound topic", dir: pipeline.Outbound, addr: "..", opts: out(kafka.WriterOptions{}),
			params: pipeline.Params{}, want: `topic name ".." is reserved`},
		{name: "no group", b: noGroup, dir: pipeline.Inbound, addr: "orders", opts: in(kafka.ReaderOptions{}),
			params: pipeline.Params{}, want: "inbound kafka links need a consumer group: set group on the connector"},
		{name: "negative linger", dir: pipeline.Outbound, addr: "alerts", opts: out(kafka.WriterOptions{Linger: -time.Second}),
			params: pipeline.Params{"linger": "-1s"}, want: `linger "-1s": must not be negative`},
		{name: "negative max_wait", dir: pipeline.Inbound, addr: "orders", opts: in(kafka.ReaderOptions{MaxWait: -time.Second}),
			params: pipeline.Params{"max_wait": "-1s"}, want: `max_wait "-1s": must not be negative`},
		{name: "negative batch_size", dir: pipeline.Outbound, addr: "alerts", opts: out(kafka.WriterOptions{BatchSize: -1}),
			params: pipeline.Params{"batch_size": "-1"}, want: `batch_size "-1": want a whole number of at least 0`},
		{name: "unknown compression", dir: pipeline.Outbound, addr: "alerts", opts: out(kafka.WriterOptions{Compression: "zstdd"}),
			params: pipeline.Params{"compression": "zstdd"}, want: `compression "zstdd": want none, gzip, snappy, lz4 or zstd (did you mean "zstd"?)`},
		{name: "oversized max_bytes", dir: pipeline.Inbound, addr: "orders", opts: in(kafka.ReaderOptions{MaxBytes: 4 << 30}),
			params: pipeline.Params{"max_bytes": "4GiB"}, want: `max_bytes "4GiB": want a size of at most 2147483647`},

		// Only typed options can make these mistakes.
		{name: "acks out of range", dir: pipeline.Outbound, addr: "alerts", opts: out(kafka.WriterOptions{Acks: 9}),
			want: `acks "9": want all, one or none`},
		{name: "start offset out of range", dir: pipeline.Inbound, addr: "orders", opts: in(kafka.ReaderOptions{StartOffset: 7}),
			want: `start_offset "7": want first or last`},
		{name: "negative min_bytes", dir: pipeline.Inbound, addr: "orders", opts: in(kafka.ReaderOptions{MinBytes: -1}),
			want: `min_bytes "-1": must not be negative`},
		{name: "outbound options on an inbound link", dir: pipeline.Inbound, addr: "orders", opts: out(kafka.WriterOptions{}),
			want: "inbound kafka link options: want kafka.In, got kafka.Out"},
		{name: "inbound options on an outbound link", dir: pipeline.Outbound, addr: "alerts", opts: in(kafka.ReaderOptions{}),
			want: "outbound kafka link options: want kafka.Out, got kafka.In"},
		{name: "a pointer is ignored by the link, so refused", dir: pipeline.Outbound, addr: "alerts", opts: &kafka.Out{},
			want: "outbound kafka link options: want kafka.Out, got *kafka.Out"},
		{name: "another connector's options", dir: pipeline.Outbound, addr: "alerts", opts: struct{ QoS int }{1},
			want: "outbound kafka link options: want kafka.Out, got struct { QoS int }"},
		{name: "every problem at once", dir: pipeline.Inbound, addr: "a b", opts: in(kafka.ReaderOptions{MinBytes: -1, MaxWait: -1}),
			want: "topic \"a b\": invalid character ' ' (allowed: letters, digits, '.', '_', '-')\n" +
				"min_bytes \"-1\": must not be negative\n" +
				"max_wait \"-1ns\": must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bb := tc.b
			if bb == nil {
				bb = b
			}
			check := func(front string, err error) {
				t.Helper()
				got := ""
				if err != nil {
					got = err.Error()
				}
				if got != tc.want {
					t.Errorf("%s: error\n%s\nwant\n%s", front, got, tc.want)
				}
			}
			check("ValidateLinkOptions", bb.ValidateLinkOptions(tc.dir, tc.addr, tc.opts))
			if tc.params != nil {
				_, err := bb.ParseLinkOptions(tc.dir, tc.addr, tc.params)
				check("ParseLinkOptions", err)
			}
		})
	}
}

// TestGraphValidatesTypedOptions: the graph runs ValidateLinkOptions on a
// link given typed options in Go, so a wrongly typed option is an error
// at load instead of silently becoming the default.
func TestGraphValidatesTypedOptions(t *testing.T) {
	b, err := kafka.New(kafka.Config{Brokers: []string{"127.0.0.1:1"}, Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	g := pipeline.New().Connector("kafka", b)
	g.Record("in").From("kafka://orders", codec.Raw{}, pipeline.Options(kafka.Out{}))
	g.Pipeline("p").From("in").To("kafka://alerts", codec.Raw{}, pipeline.Options(kafka.Out{WriterOptions: kafka.WriterOptions{Linger: -1}}))
	err = g.Validate()
	if err == nil {
		t.Fatal("Validate accepted wrongly typed and out-of-range options")
	}
	for _, want := range []string{
		`record in: "kafka://orders": inbound kafka link options: want kafka.In, got kafka.Out`,
		`pipeline p: "kafka://alerts": linger "-1ns": must not be negative`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v\nwant it to contain %s", err, want)
		}
	}
}
