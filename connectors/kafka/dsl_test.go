package kafka_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/dsl"
)

// TestDSLErrorPositions: the DSL reports each problem of a kafka
// connector declaration and of its links at the setting it concerns, and
// problems of the endpoint or the topic at the URL or the link, all in one
// run.
func TestDSLErrorPositions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"connector settings, each at its setting",
			"connector kbad \"kafka://127.0.0.1:1\" group \"g\" linger 5 max_bytes 4m acks al\n" +
				"    sasl plain tls false ca_file \"/x\" password \"${PW}\"\n",
			[]string{
				`t.flow:1:48: connector kbad: linger "5": a duration needs a unit: write 5s for seconds (or 5ms, 5m, ...)`,
				`t.flow:1:57: connector kbad: max_bytes "4m": unit "m" is ambiguous: write MiB (powers of 1024) or MB (powers of 1000)`,
				`t.flow:1:70: connector kbad: acks "al": want all, one or none (did you mean "all"?)`,
				`t.flow:2:5: connector kbad: sasl "plain": needs a username (set username, or write the endpoint as kafka://user:password@host:port)`,
				`t.flow:2:16: connector kbad: tls "false": contradicts ca_file (a TLS setting turns TLS on: remove tls false or the TLS settings)`,
			}},
		{"endpoint problems at the URL",
			"connector kbad \"kafka://\" colour red\n",
			[]string{
				`t.flow:1:16: connector kbad: endpoint "kafka://": no brokers`,
				`t.flow:1:27: connector kbad: colour: unknown setting (known: ` + knownSettings + `)`,
			}},
		{"link settings, each at its setting; the topic at the link",
			"connector kafka \"kafka://127.0.0.1:1\" group \"g\"\n" +
				"record r {\n" +
				"  from \"kafka://in/x\" decode json max_wait 1\n" +
				"    acks all min_bytes 4KiB\n" +
				"}\n" +
				"pipeline p {\n" +
				"  from r\n" +
				"  to \"kafka://out\" encode json compression brotli lingr 5ms\n" +
				"}\n",
			[]string{
				`t.flow:3:8: record r: "kafka://in/x": topic "in/x": invalid character '/' (allowed: letters, digits, '.', '_', '-')`,
				`t.flow:3:35: record r: "kafka://in/x": max_wait "1": a duration needs a unit: write 1s for seconds (or 1ms, 1m, ...)`,
				`t.flow:4:5: record r: "kafka://in/x": acks: unknown inbound link setting (known: start_offset, min_bytes, max_bytes, max_wait)`,
				`t.flow:8:32: pipeline p: "kafka://out": compression "brotli": want none, gzip, snappy, lz4 or zstd`,
				`t.flow:8:51: pipeline p: "kafka://out": lingr: unknown outbound link setting (did you mean "linger"?)`,
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := dsl.Options{Getenv: func(string) (string, bool) { return "s3cret", true }}
			_, err := dsl.Load(opts, dsl.Source{Name: "t.flow", Src: []byte(tc.src)})
			var el *dsl.ErrorList
			if !errors.As(err, &el) {
				t.Fatalf("error %T %v, want a *dsl.ErrorList", err, err)
			}
			var got []string
			for _, e := range el.Errors {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
