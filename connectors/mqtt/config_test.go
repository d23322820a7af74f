package mqtt

import (
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("mqtts://user:secret@broker.example:8884", pipeline.Params{
		"client_id": "edge-1", "keepalive": "15s", "clean_start": "true", "session_expiry": "3600",
		"connect_timeout": "2s", "offline_queue": "50", "offline_policy": "drop-oldest", "publish_timeout": "1.5",
		"max_inflight": "4", "receive_maximum": "100", "ca_file": "/ca.pem",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{URL: "mqtts://user:secret@broker.example:8884", ClientID: "edge-1", KeepAlive: 15 * time.Second,
		CleanStart: true, SessionExpiry: time.Hour, ConnectTimeout: 2 * time.Second, OfflineQueue: 50,
		OfflinePolicy: DropOldest, PublishTimeout: 1500 * time.Millisecond, MaxInflight: 4, ReceiveMaximum: 100, CAFile: "/ca.pem"}
	if c != want {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	u, err := c.brokerURL()
	if err != nil {
		t.Fatal(err)
	}
	if u.String() != "mqtts://broker.example:8884" || c.Username != "user" || c.Password != "secret" {
		t.Fatalf("url %s user %q: credentials must move out of the URL", u, c.Username)
	}
	if c, _ := ParseConfig("mqtt://h", pipeline.Params{"session_expiry": "0"}); c.SessionExpiry >= 0 {
		t.Fatalf("explicit session_expiry 0 must be kept as 'none', got %v", c.SessionExpiry)
	}
}

func TestParseConfigReportsEveryMistake(t *testing.T) {
	_, err := ParseConfig("mqtt://h", pipeline.Params{
		"keepalive": "soon", "offline_policy": "panic", "max_inflight": "-1", "clean_start": "maybe",
		"cert_file": "/c.pem", "colour": "blue",
	})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"keepalive", "offline_policy", "max_inflight", "clean_start", "cert_file and key_file", `unknown setting "colour"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
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
		dir  pipeline.Direction
		addr string
		p    pipeline.Params
		want any
		err  string
	}{
		{pipeline.Inbound, "a/+", nil, SubOptions{QoS: 1}, ""},
		{pipeline.Inbound, "a/#", pipeline.Params{"qos": "2", "no_local": "true", "share": "g"}, SubOptions{QoS: 2, NoLocal: true, Share: "g"}, ""},
		{pipeline.Inbound, "$share/g/a", pipeline.Params{"share": "h"}, nil, "conflicts"},
		{pipeline.Inbound, "a", pipeline.Params{"qos": "3"}, nil, "want 0, 1 or 2"},
		{pipeline.Inbound, "a", pipeline.Params{"retain": "true"}, nil, "unknown inbound link option"},
		{pipeline.Outbound, "x/{d}", pipeline.Params{"qos": "0", "retain": "true", "content_type": "application/json", "message_expiry": "60"},
			PubOptions{QoS: 0, Retain: true, ContentType: "application/json", MessageExpiry: time.Minute}, ""},
		{pipeline.Outbound, "x/#", nil, nil, "topic filter"},
	} {
		got, err := parseLinkOptions(tc.dir, tc.addr, tc.p)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v %s %v: err %v, want %q", tc.dir, tc.addr, tc.p, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v %s %v: got %+v, %v; want %+v", tc.dir, tc.addr, tc.p, got, err, tc.want)
		}
	}
}

func TestPlanDeduplicatesOverlappingSubscriptions(t *testing.T) {
	subs := []pipeline.Subscription{
		{Filter: "s/+/temp", Options: SubOptions{QoS: 1}},
		{Filter: "s/#", Options: SubOptions{QoS: 1}},
		{Filter: "s/#", Options: SubOptions{QoS: 2}},
		{Filter: "s/d1/+", Options: SubOptions{QoS: 0}},
		{Filter: "jobs", Options: SubOptions{QoS: 1, Share: "g"}},
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
