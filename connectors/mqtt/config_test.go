package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("mqtts://user:secret@broker.example:8884", pipeline.Params{
		"client_id": "edge-1", "keepalive": "15s", "clean_start": "yes", "session_expiry": "1h",
		"connect_timeout": "2s", "offline_queue": "50", "offline_policy": "Drop-Oldest", "publish_timeout": "1.5s",
		"max_inflight": "4", "receive_maximum": "100", "ca_file": "/ca.pem", "async_publish": "on",
		"ack_interval": "5ms", "reconnect_min": "10ms", "reconnect_max": "1m",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{URL: "mqtts://user:secret@broker.example:8884", ClientID: "edge-1", KeepAlive: 15 * time.Second,
		CleanStart: true, SessionExpiry: time.Hour, ConnectTimeout: 2 * time.Second, OfflineQueue: 50,
		OfflinePolicy: DropOldest, PublishTimeout: 1500 * time.Millisecond, MaxInflight: 4, ReceiveMaximum: 100,
		TLS: c.TLS, AsyncPublish: true, AckInterval: 5 * time.Millisecond, ReconnectMin: 10 * time.Millisecond, ReconnectMax: time.Minute}
	if c != want {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	if c.TLS.CAFile != "/ca.pem" || !c.TLS.IsSet() {
		t.Fatalf("TLS %+v", c.TLS)
	}
	u, err := c.brokerURL()
	if err != nil {
		t.Fatal(err)
	}
	if u.String() != "mqtts://broker.example:8884" || c.Username != "user" || c.Password.Value() != "secret" {
		t.Fatalf("url %s user %q: credentials must move out of the URL", u, c.Username)
	}
	if s := fmt.Sprintf("%v %+v", c, c); strings.Contains(s, "secret@") && strings.Count(s, "secret") > 2 {
		t.Fatalf("the password shows when the configuration is printed: %s", s)
	}
	for _, tc := range []struct {
		p    pipeline.Params
		want time.Duration
	}{
		{nil, 0}, // the default (decided at build)
		{pipeline.Params{"session_expiry": "0"}, -1},
		{pipeline.Params{"session_expiry": "90s"}, 90 * time.Second},
	} {
		if c, err := ParseConfig("mqtt://h", tc.p); err != nil || c.SessionExpiry != tc.want {
			t.Errorf("%v: SessionExpiry %v (%v), want %v", tc.p, c.SessionExpiry, err, tc.want)
		}
	}
}

// TestParseConfigErrors: the kit's grammar and messages, every mistake at
// once, each a *kit.Error naming its setting, never showing the password.
func TestParseConfigErrors(t *testing.T) {
	known := "client_id, username, password, keepalive, clean_start, session_expiry, connect_timeout, ca_file, cert_file, key_file, " +
		"insecure_skip_verify, insecure, server_name, tls_min_version, offline_queue, offline_policy, publish_timeout, async_publish, " +
		"max_inflight, receive_maximum, ack_interval, reconnect_min, reconnect_max"
	for _, tc := range []struct {
		name string
		p    pipeline.Params
		want []string
	}{
		{"bare seconds need a unit", pipeline.Params{"keepalive": "30"},
			[]string{`keepalive "30": a duration needs a unit: write 30s for seconds (or 30ms, 30m, ...)`}},
		{"not a duration", pipeline.Params{"publish_timeout": "soon"},
			[]string{`publish_timeout "soon": want a duration like 500ms, 2s or 1m30s`}},
		{"negative duration", pipeline.Params{"session_expiry": "-5s"},
			[]string{`session_expiry "-5s": must not be negative`}},
		{"boolean", pipeline.Params{"clean_start": "maybe"}, []string{`clean_start "maybe": want true or false`}},
		{"offline policy", pipeline.Params{"offline_policy": "drop-olde"},
			[]string{`offline_policy "drop-olde": want block or drop-oldest (did you mean "drop-oldest"?)`}},
		{"ranges", pipeline.Params{"max_inflight": "-1", "receive_maximum": "70000", "offline_queue": "99999999"},
			[]string{
				`offline_queue "99999999": want a whole number from 0 to 16777216`,
				`max_inflight "-1": want a whole number from 0 to 65535`,
				`receive_maximum "70000": want a whole number from 0 to 65535`,
			}},
		{"misspelled", pipeline.Params{"clientid": "x"}, []string{`clientid: unknown setting (did you mean "client_id"?)`}},
		{"unknown", pipeline.Params{"colour": "blue"}, []string{`colour: unknown setting (known: ` + known + `)`}},
		{"two spellings of one setting", pipeline.Params{"insecure": "true", "insecure_skip_verify": "true"},
			[]string{`insecure: insecure_skip_verify and insecure are the same setting; give one`}},
		{"every mistake at once", pipeline.Params{"keepalive": "soon", "offline_policy": "panic", "max_inflight": "-1",
			"clean_start": "maybe", "password": "s3cret", "colour": "blue"},
			[]string{
				`keepalive "soon": want a duration like 500ms, 2s or 1m30s`,
				`clean_start "maybe": want true or false`,
				`offline_policy "panic": want block or drop-oldest`,
				`max_inflight "-1": want a whole number from 0 to 65535`,
				`colour: unknown setting (known: ` + known + `)`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("mqtt://h", tc.p)
			if err == nil || err.Error() != strings.Join(tc.want, "\n") {
				t.Fatalf("error:\n%v\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
			for _, e := range pipeline.SplitErrors(err) {
				if pipeline.SettingOf(e) == "" {
					t.Errorf("%q names no setting", e)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// TestFactoryTLS: the TLS settings are the kit's, their files loaded when
// the configuration is checked and reported with the other mistakes; the
// connection uses what kit.TLSConfig built.
func TestFactoryTLS(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name string
		url  string
		p    pipeline.Params
		want []string
	}{
		{"cert without key, with another mistake", "mqtts://h", pipeline.Params{"cert_file": "/c.pem", "keepalive": "30"},
			[]string{
				`keepalive "30": a duration needs a unit: write 30s for seconds (or 30ms, 30m, ...)`,
				`cert_file "/c.pem": needs key_file (the certificate's private key) as well`,
			}},
		{"key without cert", "mqtts://h", pipeline.Params{"key_file": "/k.pem"},
			[]string{`key_file "/k.pem": needs cert_file (the certificate) as well`}},
		{"missing CA file", "mqtts://h", pipeline.Params{"ca_file": missing},
			[]string{`ca_file "` + missing + `": no such file or directory`}},
		{"CA file without certificates", "mqtts://h", pipeline.Params{"ca_file": empty},
			[]string{`ca_file "` + empty + `": no PEM certificate found`}},
		{"bad endpoint and bad setting", "http://h", pipeline.Params{"keepalive": "30"},
			[]string{`keepalive "30": a duration needs a unit: write 30s for seconds (or 30ms, 30m, ...)`, `mqtt: endpoint scheme "http": want mqtt:// or mqtts://`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Factory(tc.url, tc.p)
			if err == nil || err.Error() != strings.Join(tc.want, "\n") {
				t.Fatalf("error:\n%v\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
	b, err := Factory("mqtts://broker.example", pipeline.Params{"insecure": "true", "server_name": "mqtt.internal", "tls_min_version": "1.3"})
	if err != nil {
		t.Fatal(err)
	}
	tc := b.(*Builder).tls
	if tc == nil || !tc.InsecureSkipVerify || tc.ServerName != "mqtt.internal" || tc.MinVersion != tls.VersionTLS13 {
		t.Fatalf("tls config %+v", tc)
	}
	if b, err := Factory("mqtt://h", nil); err != nil || b.(*Builder).tls != nil {
		t.Fatalf("plain mqtt: tls %v, %v", b.(*Builder).tls, err)
	}
}

// TestValidateLinkOptions: typed Go options get the checks the settings
// get after reading, with the same error texts; both front ends, through
// the graph, refuse the same mistake with the same message. Options of the
// other direction's type are refused with the expected type.
func TestValidateLinkOptions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		dir    pipeline.Direction
		addr   string
		typed  any
		params pipeline.Params // the same mistake written as settings; nil: none
		want   string          // "" when valid
	}{
		{"inbound valid", pipeline.Inbound, "a/+", In{QoS: 2, Share: "g"}, pipeline.Params{"qos": "2", "share": "g"}, ""},
		{"inbound pointer", pipeline.Inbound, "a/+", &In{QoS: 1}, pipeline.Params{"qos": "1"}, ""},
		{"outbound valid", pipeline.Outbound, "a/{d}", Out{QoS: 0, MessageExpiry: time.Minute}, pipeline.Params{"qos": "0", "message_expiry": "1m"}, ""},
		{"inbound qos 3", pipeline.Inbound, "a", In{QoS: 3}, pipeline.Params{"qos": "3"}, `qos "3": want a whole number from 0 to 2`},
		{"outbound qos 3", pipeline.Outbound, "a", Out{QoS: 3}, pipeline.Params{"qos": "3"}, `qos "3": want a whole number from 0 to 2`},
		{"bad group", pipeline.Inbound, "a", In{QoS: 1, Share: "a/b"}, pipeline.Params{"share": "a/b"},
			`share "a/b": not a valid group name (want a non-empty name without /, + or #)`},
		{"group conflicting with the address", pipeline.Inbound, "$share/g/a", In{QoS: 1, Share: "h"}, pipeline.Params{"share": "h"},
			`share "h": conflicts with the group of address "$share/g/a"`},
		{"no group in the address", pipeline.Inbound, "$share//t", In{QoS: 1}, pipeline.Params{},
			`shared subscription "$share//t": want $share/GROUP/filter`},
		{"negative expiry", pipeline.Outbound, "a", Out{QoS: 1, MessageExpiry: -time.Second}, pipeline.Params{"message_expiry": "-1s"},
			`message_expiry "-1s": must not be negative`},
		{"outbound options on an inbound link", pipeline.Inbound, "a", Out{QoS: 1}, nil,
			"inbound link options are mqtt.Out, want mqtt.In"},
		{"inbound options on an outbound link", pipeline.Outbound, "a", &In{QoS: 1}, nil,
			"outbound link options are *mqtt.In, want mqtt.Out"},
		{"options of another connector", pipeline.Outbound, "a", struct{ QoS byte }{1}, nil,
			"outbound link options are struct { QoS uint8 }, want mqtt.Out"},
		{"nil pointer", pipeline.Inbound, "a", (*In)(nil), nil, "inbound link options: nil *mqtt.In"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(Config{URL: "mqtt://127.0.0.1:1"})
			if err != nil {
				t.Fatal(err)
			}
			err = b.ValidateLinkOptions(tc.dir, tc.addr, tc.typed)
			if got := errText(err); got != tc.want {
				t.Fatalf("ValidateLinkOptions: error %q, want %q", got, tc.want)
			}
			if tc.params == nil {
				return
			}
			_, err = b.ParseLinkOptions(tc.dir, tc.addr, tc.params)
			if got := errText(err); got != tc.want {
				t.Fatalf("ParseLinkOptions: error %q, want %q", got, tc.want)
			}
			// Through the graph: the Go front end (typed options) and the
			// settings report the same problem.
			typed := linkGraph(b, tc.dir, tc.addr, pipeline.Options(tc.typed))
			params := linkGraph(b, tc.dir, tc.addr, pipeline.WithParams(tc.params))
			if tc.want == "" {
				if typed != nil || params != nil {
					t.Fatalf("graph: typed %v, settings %v; want both valid", typed, params)
				}
				return
			}
			if typed == nil || params == nil || typed.Error() != params.Error() || !strings.Contains(typed.Error(), tc.want) {
				t.Fatalf("graph errors differ or miss %q:\ntyped:    %v\nsettings: %v", tc.want, typed, params)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// linkOpt is an option of either direction (pipeline.Options,
// pipeline.WithParams).
type linkOpt interface {
	pipeline.InOption
	pipeline.OutOption
}

// linkGraph validates a graph with one mqtt link in direction dir (and
// what the other side needs) configured by opt.
func linkGraph(b pipeline.Builder, dir pipeline.Direction, addr string, opt linkOpt) error {
	g := pipeline.New().Connector("mqtt", b)
	if dir == pipeline.Inbound {
		g.Record("r").From("mqtt://"+addr, codec.Raw{}, opt)
		return g.Validate()
	}
	g.Record("r").From("mqtt://in", codec.Raw{})
	g.Pipeline("p").From("r").To("mqtt://"+addr, codec.Raw{}, opt)
	return g.Validate()
}

// TestGraphRefusesWildcardDestination: a static outbound destination with
// a wildcard is refused at load by the graph (the connector declares
// Topics), whichever front end gave the options; the connector itself no
// longer repeats the check.
func TestGraphRefusesWildcardDestination(t *testing.T) {
	b, err := New(Config{URL: "mqtt://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ParseLinkOptions(pipeline.Outbound, "x/#", nil); err != nil {
		t.Fatalf("ParseLinkOptions: %v (the graph checks wildcards)", err)
	}
	for _, opt := range []linkOpt{pipeline.Options(Out{QoS: 1}), pipeline.WithParams(pipeline.Params{"qos": "1"})} {
		err := linkGraph(b, pipeline.Outbound, "x/#", opt)
		if err == nil || !strings.Contains(err.Error(), "cannot publish to a topic filter (wildcard # in the destination)") {
			t.Fatalf("graph error %v, want the wildcard refused", err)
		}
	}
}

// TestCheckDestination: a destination rendered per record that is not a
// topic name is refused before it reaches the broker, permanently.
func TestCheckDestination(t *testing.T) {
	for _, tc := range []struct {
		dest string
		ok   bool
	}{
		{"alerts/d-1", true}, {"$SYS-like/x", true}, {"a/b/c", true},
		{"alerts/+", false}, {"alerts/#", false}, {"a+b", false}, {"", false}, {"a\x00b", false},
	} {
		err := checkDestination(tc.dest)
		if (err == nil) != tc.ok {
			t.Errorf("checkDestination(%q) = %v, want ok %v", tc.dest, err, tc.ok)
		}
		if err != nil && !pipeline.IsPermanent(asyncOutcome(err)) {
			t.Errorf("checkDestination(%q): %v is not permanent", tc.dest, err)
		}
	}
}

// TestAsyncOutcome: what an asynchronous publish reports to the runner.
func TestAsyncOutcome(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"not authorized", &RejectedError{Topic: "t", Code: 0x87}, true},
		{"topic name invalid", &RejectedError{Topic: "t", Code: 0x90}, true},
		{"unspecified", &RejectedError{Topic: "t", Code: 0x80}, true},
		{"invalid packet", &RejectedError{Topic: "t", Err: paho.ErrInvalidArguments}, true},
		{"quota exceeded", &RejectedError{Topic: "t", Code: 0x97}, false},
		{"packet identifier in use", &RejectedError{Topic: "t", Code: 0x91}, false},
		{"timeout", fmt.Errorf("mqtt: publish to t not confirmed: %w", context.DeadlineExceeded), false},
		{"dropped", ErrDropped, false},
		{"closed", ErrClosed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := asyncOutcome(tc.err)
			if pipeline.IsPermanent(got) != tc.permanent || !errors.Is(got, tc.err) {
				t.Fatalf("asyncOutcome(%v) = %v, permanent %v; want permanent %v", tc.err, got, pipeline.IsPermanent(got), tc.permanent)
			}
		})
	}
	if asyncOutcome(nil) != nil {
		t.Fatal("success must stay nil")
	}
	if got := (&RejectedError{Topic: "t", Code: 0x87, Reason: ": acl"}).Error(); got != "mqtt: broker rejected publish to t: not authorized (reason 0x87): acl" {
		t.Fatalf("message %q", got)
	}
}

func TestEndpoints(t *testing.T) {
	for _, tc := range []struct {
		url, err, scheme string
	}{
		{"mqtt://127.0.0.1", "", "mqtt"},
		{"mqtts://h:1", "", "mqtts"},
		{"http://h", "want mqtt:// or mqtts://", ""},
		{"mqtt://", "no host", ""},
		{"mqtt://h/topic", "unexpected path", ""},
	} {
		b, err := New(Config{URL: tc.url})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil || b.Scheme() != tc.scheme {
			t.Errorf("%s: %v %v", tc.url, b, err)
		}
	}
	if _, err := EmbeddedFactory("embedded://127.0.0.1:0", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := EmbeddedFactory("mqtt://x", nil); err == nil {
		t.Fatal("embedded factory accepted a non-embedded endpoint")
	}
}

func TestParseLinkOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  pipeline.Direction
		addr string
		p    pipeline.Params
		want any
		err  []string
	}{
		{"inbound defaults", pipeline.Inbound, "a/+", nil, In{QoS: 1}, nil},
		{"inbound options", pipeline.Inbound, "a/#", pipeline.Params{"qos": "2", "no_local": "yes", "share": "g", "retain_as_published": "on"},
			In{QoS: 2, NoLocal: true, Share: "g", RetainAsPublished: true}, nil},
		{"group is share", pipeline.Inbound, "a", pipeline.Params{"group": "g", "qos": "0"}, In{QoS: 0, Share: "g"}, nil},
		{"share matching the address", pipeline.Inbound, "$share/g/a", pipeline.Params{"share": "g"}, In{QoS: 1, Share: "g"}, nil},
		{"outbound options", pipeline.Outbound, "x/{d}", pipeline.Params{"qos": "0", "retain": "true", "content_type": "application/json", "message_expiry": "1m"},
			Out{QoS: 0, Retain: true, ContentType: "application/json", MessageExpiry: time.Minute}, nil},
		{"qos out of range", pipeline.Inbound, "a", pipeline.Params{"qos": "3"}, nil, []string{`qos "3": want a whole number from 0 to 2`}},
		{"qos not a number", pipeline.Outbound, "a", pipeline.Params{"qos": "one"}, nil, []string{`qos "one": want a whole number from 0 to 2`}},
		{"misspelled", pipeline.Inbound, "a", pipeline.Params{"qoss": "1"}, nil, []string{`qoss: unknown inbound link setting (did you mean "qos"?)`}},
		{"outbound setting on an inbound link", pipeline.Inbound, "a", pipeline.Params{"retain": "true"}, nil,
			[]string{`retain: unknown inbound link setting (known: qos, no_local, share, group, retain_as_published)`}},
		{"inbound setting on an outbound link", pipeline.Outbound, "a", pipeline.Params{"no_local": "true"}, nil,
			[]string{`no_local: unknown outbound link setting (known: qos, retain, content_type, message_expiry)`}},
		{"bad group", pipeline.Inbound, "a", pipeline.Params{"share": "a/b"}, nil,
			[]string{`share "a/b": not a valid group name (want a non-empty name without /, + or #)`}},
		{"share conflicting with the address", pipeline.Inbound, "$share/g/a", pipeline.Params{"share": "h"}, nil,
			[]string{`share "h": conflicts with the group of address "$share/g/a"`}},
		{"empty group in the address", pipeline.Inbound, "$share//t", nil, nil, []string{`shared subscription "$share//t": want $share/GROUP/filter`}},
		{"bare seconds", pipeline.Outbound, "a", pipeline.Params{"message_expiry": "60"}, nil,
			[]string{`message_expiry "60": a duration needs a unit: write 60s for seconds (or 60ms, 60m, ...)`}},
		{"boolean", pipeline.Outbound, "a", pipeline.Params{"retain": "maybe"}, nil, []string{`retain "maybe": want true or false`}},
		// A static destination with a wildcard is the graph's check
		// (pipeline.Caps.Topics, TestGraphRefusesWildcardDestination).
		{"templated destination", pipeline.Outbound, "x/{d}/y", nil, Out{QoS: 1}, nil},
		{"empty filter after the group", pipeline.Inbound, "$share/g/", nil, nil, []string{`shared subscription "$share/g/": want $share/GROUP/filter`}},
		{"bad group written as group", pipeline.Inbound, "a", pipeline.Params{"group": "a+b"}, nil,
			[]string{`group "a+b": not a valid group name (want a non-empty name without /, + or #)`}},
		{"empty group", pipeline.Inbound, "a", pipeline.Params{"share": ""}, nil,
			[]string{`share: not a valid group name (want a non-empty name without /, + or #)`}},
		{"every mistake at once", pipeline.Outbound, "a", pipeline.Params{"qos": "3", "retain": "maybe", "colour": "red"}, nil,
			[]string{
				`qos "3": want a whole number from 0 to 2`,
				`retain "maybe": want true or false`,
				`colour: unknown outbound link setting (known: qos, retain, content_type, message_expiry)`,
			}},
		{"inbound mistakes at once", pipeline.Inbound, "$share/g/a", pipeline.Params{"qos": "9", "share": "h", "no_local": "perhaps"}, nil,
			[]string{
				`qos "9": want a whole number from 0 to 2`,
				`no_local "perhaps": want true or false`,
				`share "h": conflicts with the group of address "$share/g/a"`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseLinkOptions(tc.dir, tc.addr, tc.p)
			if tc.err != nil {
				if err == nil || err.Error() != strings.Join(tc.err, "\n") {
					t.Fatalf("error:\n%v\nwant:\n%s", err, strings.Join(tc.err, "\n"))
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestHeaderMapping: user properties and envelope headers map both ways
// in order; the content type travels in the MQTT 5 field, whatever the
// case of the header's name, and a link's content_type wins.
func TestHeaderMapping(t *testing.T) {
	tp := pipeline.Header{Key: "traceparent", Value: "00-abc-def-01"}
	many := pipeline.Headers{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}, {Key: "c", Value: "3"}, {Key: "d", Value: "4"}, {Key: "e", Value: "5"}, {Key: "f", Value: ""}}
	for _, tc := range []struct {
		name    string
		o       Out
		in      pipeline.Headers
		user    string // key=value,... sent as user properties
		ct      string
		noProps bool
	}{
		{"nothing", Out{}, nil, "", "", true},
		{"headers in order", Out{}, pipeline.Headers{tp, {Key: "x-b", Value: "2"}}, "traceparent=00-abc-def-01,x-b=2", "", false},
		{"content type header", Out{}, pipeline.Headers{{Key: "content-type", Value: "text/plain"}, tp}, "traceparent=00-abc-def-01", "text/plain", false},
		{"content type in any case", Out{}, pipeline.Headers{tp, {Key: "Content-Type", Value: "application/json"}}, "traceparent=00-abc-def-01", "application/json", false},
		{"only a content type", Out{}, pipeline.Headers{{Key: "CONTENT-TYPE", Value: "a/b"}}, "", "a/b", false},
		{"the link's content type wins", Out{ContentType: "application/cbor"}, pipeline.Headers{{Key: "Content-Type", Value: "text/plain"}}, "", "application/cbor", false},
		{"more headers than the inline room", Out{}, many, "a=1,b=2,c=3,d=4,e=5,f=", "", false},
		{"expiry alone", Out{MessageExpiry: 1500 * time.Millisecond}, nil, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			props := pubProperties(tc.o, tc.in)
			if tc.noProps {
				if props != nil {
					t.Fatalf("properties %+v, want none", props)
				}
				return
			}
			if props == nil {
				t.Fatal("no properties")
			}
			var user []string
			for _, u := range props.User {
				user = append(user, u.Key+"="+u.Value)
			}
			if got := strings.Join(user, ","); got != tc.user || props.ContentType != tc.ct {
				t.Fatalf("user %q content type %q, want %q %q", got, props.ContentType, tc.user, tc.ct)
			}
			if tc.o.MessageExpiry > 0 && (props.MessageExpiry == nil || *props.MessageExpiry != 1) {
				t.Fatalf("message expiry %v", props.MessageExpiry)
			}
			// Inbound, the same properties come back as the headers, the
			// content type last under its canonical name.
			back := inHeaders(&paho.PublishProperties{User: props.User, ContentType: props.ContentType})
			want := append([]string(nil), user...)
			if props.ContentType != "" {
				want = append(want, kit.ContentTypeHeader+"="+props.ContentType)
			}
			var got []string
			for _, h := range back {
				got = append(got, h.Key+"="+h.Value)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("inbound headers %q, want %q", got, want)
			}
		})
	}
	if hs := inHeaders(&paho.PublishProperties{}); hs != nil {
		t.Fatalf("no properties: headers %v, want nil", hs)
	}
}

// TestHeaderMappingAllocs keeps the per-message allocations of the
// mapping at most where they were before the kit port: none without
// headers, one for the inbound headers, one for the outbound properties
// (up to two user properties), besides the payload copy and the publish
// request itself.
func TestHeaderMappingAllocs(t *testing.T) {
	c := &Conn{}
	c.cfg.PublishTimeout = defaultPublishTimeout
	ctx := context.Background()
	hs := pipeline.Headers{{Key: "traceparent", Value: "00-abc-def-01"}, {Key: "Content-Type", Value: "application/json"}, {Key: "x-a", Value: "1"}}
	none, some := &paho.PublishProperties{}, &paho.PublishProperties{ContentType: "a/b", User: paho.UserProperties{{Key: "k", Value: "v"}}}
	for _, tc := range []struct {
		name string
		f    func()
		max  float64
	}{
		{"newReq without headers", func() { c.newReq(ctx, "t", Out{QoS: 1}, &pipeline.Envelope{Payload: []byte("x")}) }, 2},
		{"newReq with headers", func() { c.newReq(ctx, "t", Out{QoS: 1}, &pipeline.Envelope{Payload: []byte("x"), Headers: hs}) }, 3},
		{"newReq with headers and expiry", func() {
			c.newReq(ctx, "t", Out{QoS: 1, MessageExpiry: time.Minute}, &pipeline.Envelope{Payload: []byte("x"), Headers: hs})
		}, 3},
		{"inHeaders without properties", func() { _ = inHeaders(none) }, 0},
		{"inHeaders", func() { _ = inHeaders(some) }, 1},
	} {
		if n := testing.AllocsPerRun(1000, tc.f); n > tc.max {
			t.Errorf("%s: %v allocations, want at most %v", tc.name, n, tc.max)
		}
	}
}

func TestPlanDeduplicatesOverlappingSubscriptions(t *testing.T) {
	subs := []pipeline.Subscription{
		{Filter: "s/+/temp", Options: In{QoS: 1}},
		{Filter: "s/#", Options: In{QoS: 1}},
		{Filter: "s/#", Options: In{QoS: 2}},
		{Filter: "s/d1/+", Options: In{QoS: 0}},
		{Filter: "jobs", Options: In{QoS: 1, Share: "g"}},
	}
	c := &Conn{plan: makePlan(subs)}
	if len(c.plan) != 4 || c.plan[1].opts.QoS != 2 || c.plan[3].filter != "$share/g/jobs" {
		t.Fatalf("plan %+v", c.plan)
	}
	for _, tc := range []struct {
		sid   int
		topic string
		dup   bool
	}{
		{1, "s/d1/temp", true},  // s/# has QoS 2: its copy wins
		{2, "s/d1/temp", false}, //
		{3, "s/d1/hum", true},   // QoS 0 copy loses to s/#
		{2, "s/x", false},       // only s/# matches
		{4, "jobs", false},      // shared copies always count
	} {
		if got := c.duplicate(tc.sid, tc.topic); got != tc.dup {
			t.Errorf("duplicate(%d, %s) = %v, want %v", tc.sid, tc.topic, got, tc.dup)
		}
	}
}

// TestPublishModes: the connector publishes synchronously unless
// async_publish is true (then it is a pipeline.AsyncPublisher).
func TestPublishModes(t *testing.T) {
	for _, tc := range []struct {
		params pipeline.Params
		async  bool
	}{
		{nil, false},
		{pipeline.Params{"async_publish": "true"}, true},
		{pipeline.Params{"async_publish": "false"}, false},
	} {
		b, err := Factory("mqtt://127.0.0.1:1", tc.params)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.(*Builder).Config().AsyncPublish; got != tc.async {
			t.Errorf("%v: AsyncPublish = %v", tc.params, got)
		}
		c, err := b.Build(context.Background(), pipeline.BuildEnv{Name: "mqtt"})
		if err != nil {
			t.Fatal(err)
		}
		if _, async := c.(pipeline.AsyncPublisher); async != tc.async {
			t.Errorf("%v: built %T, want async %v", tc.params, c, tc.async)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := c.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		cancel()
	}
}

// TestRenderedWildcardRefusedPerRecord: a templated destination rendered
// into a wildcard (or empty) topic fails that record at once, in both
// publish modes, without waiting for (or reaching) the broker.
func TestRenderedWildcardRefusedPerRecord(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			b, err := New(Config{URL: "mqtt://127.0.0.1:1", AsyncPublish: async})
			if err != nil {
				t.Fatal(err)
			}
			c, err := b.Build(context.Background(), pipeline.BuildEnv{Name: "mqtt"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = c.Close(ctx)
			})
			for _, dest := range []string{"alerts/+", "alerts/#", ""} {
				env := &pipeline.Envelope{Payload: []byte("x"), Ack: pipeline.NewAck(func(error) { t.Errorf("%q: ack finished, want the hand-off refused", dest) })}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				if async {
					err = c.(pipeline.AsyncPublisher).PublishAsync(ctx, dest, Out{QoS: 1}, env)
				} else {
					err = c.Publish(ctx, dest, Out{QoS: 1}, env)
				}
				cancel()
				var rej *RejectedError
				if !errors.As(err, &rej) || rej.Retryable() {
					t.Errorf("%q: %v, want a permanent *RejectedError", dest, err)
				}
			}
		})
	}
}

// TestIsConnErr: the errors after which a publish is queued again for the
// next connection rather than failed. session.ErrNoConnection is what paho
// returns when the connection dropped between the connector's look at its
// state and paho adding the packet to the session (seen in the
// conformance suite's PublishHonoursContext while the broker stopped).
func TestIsConnErr(t *testing.T) {
	for _, tc := range []struct {
		err  error
		conn bool
	}{
		{nil, false},
		{session.ErrNoConnection, true},
		{fmt.Errorf("publish: %w", session.ErrNoConnection), true},
		{context.Canceled, true},
		{&net.OpError{Op: "write", Err: os.ErrDeadlineExceeded}, true},
		{paho.ErrInvalidArguments, false},
		{errors.New("something else"), false},
	} {
		if got := isConnErr(tc.err); got != tc.conn {
			t.Errorf("isConnErr(%v) = %v, want %v", tc.err, got, tc.conn)
		}
	}
}
