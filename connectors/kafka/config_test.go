package kafka_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// knownSettings is the list an unknown connector setting is answered
// with.
const knownSettings = "group, client_id, tls, ca_file, cert_file, key_file, insecure_skip_verify, insecure, server_name, " +
	"tls_min_version, sasl, username, password, commit_interval, start_offset, min_bytes, max_bytes, max_wait, acks, " +
	"compression, batch_size, linger, session_timeout, rebalance_timeout, heartbeat_interval, revoke_timeout, " +
	"max_in_flight, max_attempts, publish_timeout"

// writeCA writes the PEM of a self-signed certificate to a file and
// returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	_, caPEM := selfSigned(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestFactoryParams(t *testing.T) {
	ca := writeCA(t)
	tests := []struct {
		name     string
		endpoint string
		params   pipeline.Params
		check    func(t *testing.T, c kafka.Config) // on success, with defaults applied
		wantErr  string                             // the whole error text
	}{
		{name: "minimal", endpoint: "kafka://127.0.0.1:9092", check: func(t *testing.T, c kafka.Config) {
			if c.ClientID != "aimdb-flow" || c.TLS != nil || c.SASL != nil || c.Reader.MaxBytes != 1<<20 || c.Reader.MinBytes != 1 ||
				c.Writer.Acks != kafka.AcksAll || c.Writer.Compression != "none" || c.CommitInterval != time.Second {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "several brokers and settings", endpoint: "kafka://h1:9092,h2",
			params: pipeline.Params{"group": "g", "client_id": "c", "commit_interval": "2s", "start_offset": "latest",
				"acks": "leader", "compression": "ZSTD", "batch_size": "100", "linger": "10ms", "min_bytes": "1KiB",
				"max_bytes": "4MiB", "max_wait": "1s", "session_timeout": "1m", "rebalance_timeout": "1d",
				"heartbeat_interval": "0", "revoke_timeout": "1m30s", "max_in_flight": "50", "max_attempts": "2",
				"publish_timeout": "1.5m"},
			check: func(t *testing.T, c kafka.Config) {
				want := kafka.Config{Brokers: []string{"h1:9092", "h2:9092"}, Group: "g", ClientID: "c",
					CommitInterval: 2 * time.Second, SessionTimeout: time.Minute, RebalanceTimeout: 24 * time.Hour,
					HeartbeatInterval: time.Second, RevokeTimeout: 90 * time.Second, MaxInFlight: 50, MaxAttempts: 2,
					PublishTimeout: 90 * time.Second,
					Reader:         kafka.ReaderOptions{StartOffset: kafka.StartLast, MinBytes: 1024, MaxBytes: 4 << 20, MaxWait: time.Second},
					Writer:         kafka.WriterOptions{Acks: kafka.AcksOne, Compression: "zstd", BatchSize: 100, Linger: 10 * time.Millisecond}}
				if got, w := fmt.Sprintf("%+v", c), fmt.Sprintf("%+v", want); got != w {
					t.Errorf("config\n%s\nwant\n%s", got, w)
				}
			}},
		{name: "acks and start_offset spellings", endpoint: "kafka://h:1", params: pipeline.Params{"acks": "-1", "start_offset": "Oldest"},
			check: func(t *testing.T, c kafka.Config) {
				if c.Writer.Acks != kafka.AcksAll || c.Reader.StartOffset != kafka.StartFirst {
					t.Errorf("acks %v start %v", c.Writer.Acks, c.Reader.StartOffset)
				}
			}},
		{name: "acks none", endpoint: "kafka://h:1", params: pipeline.Params{"acks": "0"},
			check: func(t *testing.T, c kafka.Config) {
				if c.Writer.Acks != kafka.AcksNone {
					t.Errorf("acks %v", c.Writer.Acks)
				}
			}},
		{name: "sasl scram", endpoint: "kafka://h:9092", params: pipeline.Params{"sasl": "SCRAM-SHA-512", "username": "u", "password": "p"},
			check: func(t *testing.T, c kafka.Config) {
				if c.SASL == nil || c.SASL.Name() != "SCRAM-SHA-512" {
					t.Errorf("sasl %v", c.SASL)
				}
			}},
		{name: "credentials in the endpoint mean plain", endpoint: "kafka://u:p@h:9092",
			check: func(t *testing.T, c kafka.Config) {
				if c.SASL == nil || c.SASL.Name() != "PLAIN" {
					t.Errorf("sasl %v", c.SASL)
				}
			}},
		{name: "a TLS setting turns TLS on", endpoint: "kafka://h:1", params: pipeline.Params{"ca_file": ca, "server_name": "kafka.example", "tls_min_version": "1.3"},
			check: func(t *testing.T, c kafka.Config) {
				if c.TLS == nil || c.TLS.RootCAs == nil || c.TLS.ServerName != "kafka.example" || c.TLS.MinVersion != tls.VersionTLS13 {
					t.Errorf("tls %+v", c.TLS)
				}
			}},
		{name: "tls true alone uses the system roots", endpoint: "kafka://h:1", params: pipeline.Params{"tls": "yes"},
			check: func(t *testing.T, c kafka.Config) {
				if c.TLS == nil || c.TLS.RootCAs != nil || c.TLS.MinVersion != tls.VersionTLS12 {
					t.Errorf("tls %+v", c.TLS)
				}
			}},
		{name: "insecure_skip_verify spelling", endpoint: "kafka://h:1", params: pipeline.Params{"insecure_skip_verify": "true"},
			check: func(t *testing.T, c kafka.Config) {
				if c.TLS == nil || !c.TLS.InsecureSkipVerify {
					t.Errorf("tls %+v", c.TLS)
				}
			}},
		{name: "tls false", endpoint: "kafka://h:1", params: pipeline.Params{"tls": "off"},
			check: func(t *testing.T, c kafka.Config) {
				if c.TLS != nil {
					t.Errorf("tls %+v", c.TLS)
				}
			}},

		{name: "bad scheme", endpoint: "mqtt://h:1", wantErr: `endpoint "mqtt://h:1": want kafka://host:port[,host:port...]`},
		{name: "bad endpoint and a bad setting", endpoint: "kafka://", params: pipeline.Params{"acks": "two"},
			wantErr: "endpoint \"kafka://\": no brokers\nacks \"two\": want all, one or none"},
		{name: "bad acks", endpoint: "kafka://h:1", params: pipeline.Params{"acks": "al"},
			wantErr: `acks "al": want all, one or none (did you mean "all"?)`},
		{name: "bad compression", endpoint: "kafka://h:1", params: pipeline.Params{"compression": "brotli"},
			wantErr: `compression "brotli": want none, gzip, snappy, lz4 or zstd`},
		{name: "bad start_offset", endpoint: "kafka://h:1", params: pipeline.Params{"start_offset": "begin"},
			wantErr: `start_offset "begin": want first or last`},
		{name: "unknown", endpoint: "kafka://h:1", params: pipeline.Params{"colour": "red"},
			wantErr: "colour: unknown setting (known: " + knownSettings + ")"},
		{name: "misspelt", endpoint: "kafka://h:1", params: pipeline.Params{"lingr": "5ms"},
			wantErr: `lingr: unknown setting (did you mean "linger"?)`},
		{name: "sasl without user", endpoint: "kafka://h:1", params: pipeline.Params{"sasl": "plain"},
			wantErr: `sasl "plain": needs a username (set username, or write the endpoint as kafka://user:password@host:port)`},
		{name: "bad sasl", endpoint: "kafka://h:1", params: pipeline.Params{"sasl": "scram", "username": "u"},
			wantErr: `sasl "scram": want plain, scram-sha-256 or scram-sha-512`},
		{name: "password without user", endpoint: "kafka://h:1", params: pipeline.Params{"password": "s3cret"},
			wantErr: `password: given without username`},
		{name: "password refused by SASLprep is not shown", endpoint: "kafka://h:1",
			params:  pipeline.Params{"sasl": "scram-sha-256", "username": "u", "password": "s3\x07cret"},
			wantErr: `password: not usable with scram-sha-256 (SASLprep refuses it)`},
		{name: "bare number duration", endpoint: "kafka://h:1", params: pipeline.Params{"commit_interval": "30"},
			wantErr: `commit_interval "30": a duration needs a unit: write 30s for seconds (or 30ms, 30m, ...)`},
		{name: "bad duration", endpoint: "kafka://h:1", params: pipeline.Params{"linger": "soon"},
			wantErr: `linger "soon": want a duration like 500ms, 2s or 1m30s`},
		{name: "negative duration", endpoint: "kafka://h:1", params: pipeline.Params{"session_timeout": "-1s"},
			wantErr: `session_timeout "-1s": must not be negative`},
		{name: "ambiguous size", endpoint: "kafka://h:1", params: pipeline.Params{"max_bytes": "4m"},
			wantErr: `max_bytes "4m": unit "m" is ambiguous: write MiB (powers of 1024) or MB (powers of 1000)`},
		{name: "size too large for a fetch", endpoint: "kafka://h:1", params: pipeline.Params{"max_bytes": "2GiB"},
			wantErr: `max_bytes "2GiB": want a size of at most 2147483647`},
		{name: "min_bytes above max_bytes", endpoint: "kafka://h:1", params: pipeline.Params{"min_bytes": "2MiB"},
			wantErr: `min_bytes "2MiB": is above max_bytes (1MiB)`},
		{name: "negative count", endpoint: "kafka://h:1", params: pipeline.Params{"batch_size": "-1", "max_in_flight": "many"},
			wantErr: "batch_size \"-1\": want a whole number of at least 0\nmax_in_flight \"many\": want a whole number of at least 0"},
		{name: "missing ca", endpoint: "kafka://h:1", params: pipeline.Params{"ca_file": "/nonexistent/ca.pem"},
			wantErr: `ca_file "/nonexistent/ca.pem": no such file or directory`},
		{name: "cert without key", endpoint: "kafka://h:1", params: pipeline.Params{"cert_file": ca},
			wantErr: fmt.Sprintf("cert_file %q: needs key_file (the certificate's private key) as well", ca)},
		{name: "tls false with TLS settings", endpoint: "kafka://h:1", params: pipeline.Params{"tls": "false", "ca_file": ca, "insecure": "true"},
			wantErr: `tls "false": contradicts ca_file, insecure (a TLS setting turns TLS on: remove tls false or the TLS settings)`},
		{name: "bad tls", endpoint: "kafka://h:1", params: pipeline.Params{"tls": "maybe"},
			wantErr: `tls "maybe": want true or false`},
		{name: "both insecure spellings", endpoint: "kafka://h:1", params: pipeline.Params{"insecure": "true", "insecure_skip_verify": "true"},
			wantErr: `insecure: insecure_skip_verify and insecure are the same setting; give one`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := kafka.Factory(tc.endpoint, tc.params)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				tc.check(t, b.(*kafka.Builder).Config())
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("error:\n%v\nwant:\n%s", err, tc.wantErr)
			}
			// Each problem with a setting names it (the DSL reports it
			// there); endpoint problems name none.
			for _, e := range pipeline.SplitErrors(err) {
				key, _, _ := strings.Cut(e.Error(), " ")
				key = strings.TrimSuffix(key, ":")
				if got := pipeline.SettingOf(e); key != "endpoint" && got != key {
					t.Errorf("%v: names setting %q", e, got)
				}
			}
		})
	}
}

func TestLinkOptions(t *testing.T) {
	b, err := kafka.Factory("kafka://127.0.0.1:1", pipeline.Params{"group": "g", "max_bytes": "2KiB", "acks": "one"})
	if err != nil {
		t.Fatal(err)
	}
	noGroup, err := kafka.Factory("kafka://127.0.0.1:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		b       pipeline.Builder
		dir     pipeline.Direction
		addr    string
		p       pipeline.Params
		want    any
		wantErr string
	}{
		{name: "inbound", b: b, dir: pipeline.Inbound, addr: "orders", p: pipeline.Params{"start_offset": "last", "max_wait": "1s", "min_bytes": "1KiB"},
			want: kafka.In{ReaderOptions: kafka.ReaderOptions{StartOffset: kafka.StartLast, MinBytes: 1024, MaxWait: time.Second}}},
		{name: "inbound max_bytes as a size", b: b, dir: pipeline.Inbound, addr: "orders", p: pipeline.Params{"max_bytes": "4MiB"},
			want: kafka.In{ReaderOptions: kafka.ReaderOptions{MaxBytes: 4 << 20}}},
		{name: "outbound", b: b, dir: pipeline.Outbound, addr: "alerts.{site}", p: pipeline.Params{"acks": "none", "compression": "lz4", "batch_size": "10", "linger": "1d"},
			want: kafka.Out{WriterOptions: kafka.WriterOptions{Acks: kafka.AcksNone, Compression: "lz4", BatchSize: 10, Linger: 24 * time.Hour}}},
		{name: "outbound without settings", b: b, dir: pipeline.Outbound, addr: "alerts", want: kafka.Out{}},

		{name: "bad topic", b: b, dir: pipeline.Inbound, addr: "a/b",
			wantErr: `topic "a/b": invalid character '/' (allowed: letters, digits, '.', '_', '-')`},
		{name: "bad topic and settings, all at once", b: b, dir: pipeline.Inbound, addr: "a/b", p: pipeline.Params{"acks": "all", "max_wait": "-1s"},
			wantErr: "topic \"a/b\": invalid character '/' (allowed: letters, digits, '.', '_', '-')\n" +
				"max_wait \"-1s\": must not be negative\n" +
				"acks: unknown inbound link setting (known: start_offset, min_bytes, max_bytes, max_wait)"},
		{name: "min_bytes above the connector's max_bytes", b: b, dir: pipeline.Inbound, addr: "ok", p: pipeline.Params{"min_bytes": "4KiB"},
			wantErr: `min_bytes "4KiB": is above max_bytes (2KiB)`},
		{name: "max_bytes below min_bytes", b: b, dir: pipeline.Inbound, addr: "ok", p: pipeline.Params{"max_bytes": "0", "min_bytes": "3KiB"},
			wantErr: `min_bytes "3KiB": is above max_bytes (2KiB)`},
		{name: "negative size", b: b, dir: pipeline.Inbound, addr: "ok", p: pipeline.Params{"min_bytes": "-1"},
			wantErr: `min_bytes "-1": want a size like 4MiB, 512KiB, 1MB or a number of bytes`},
		{name: "inbound setting on an outbound link", b: b, dir: pipeline.Outbound, addr: "ok", p: pipeline.Params{"start_offset": "first"},
			wantErr: "start_offset: unknown outbound link setting (known: acks, compression, batch_size, linger)"},
		{name: "bare number linger", b: b, dir: pipeline.Outbound, addr: "ok", p: pipeline.Params{"linger": "5"},
			wantErr: `linger "5": a duration needs a unit: write 5s for seconds (or 5ms, 5m, ...)`},
		{name: "bad static outbound topic", b: b, dir: pipeline.Outbound, addr: "..", wantErr: `topic name ".." is reserved`},
		{name: "inbound link without a group", b: noGroup, dir: pipeline.Inbound, addr: "orders",
			wantErr: "inbound kafka links need a consumer group: set group on the connector"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.b.(pipeline.LinkOptionParser).ParseLinkOptions(tc.dir, tc.addr, tc.p)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tc.want) {
					t.Fatalf("options %#v, want %#v", got, tc.want)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("error:\n%v\nwant:\n%s", err, tc.wantErr)
			}
		})
	}
}

// TestCredentialsNeverShown: a Config built from settings can be printed
// and logged without its password.
func TestCredentialsNeverShown(t *testing.T) {
	for _, mech := range []string{"plain", "scram-sha-256"} {
		b, err := kafka.Factory("kafka://h:1", pipeline.Params{"sasl": mech, "username": "alice", "password": "pa55word"})
		if err != nil {
			t.Fatal(err)
		}
		cfg := b.(*kafka.Builder).Config()
		var logged strings.Builder
		slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg, "sasl", cfg.SASL)
		for _, out := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%q", cfg.SASL), logged.String()} {
			if strings.Contains(out, "pa55word") {
				t.Fatalf("%s: password shown: %s", mech, out)
			}
			if !strings.Contains(out, "alice") || !strings.Contains(out, kit.Redacted) {
				t.Errorf("%s: want the user and %s in %s", mech, kit.Redacted, out)
			}
		}
	}
	// A refused password is not repeated in the error either.
	_, err := kafka.Factory("kafka://h:1", pipeline.Params{"sasl": "scram-sha-512", "username": "alice", "password": "pa55\x00word"})
	var ke *kit.Error
	if !errors.As(err, &ke) || ke.Key != "password" || strings.Contains(err.Error(), "pa55") {
		t.Fatalf("error %v", err)
	}
}
