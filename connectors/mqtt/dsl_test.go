package mqtt_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// TestFlowFileAgainstMosquitto loads a .flow file through the DSL and the
// default registry (mqtt factory, ${ENV} credentials, link options) and
// runs it against a password-protected mosquitto.
func TestFlowFileAgainstMosquitto(t *testing.T) {
	br := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"edge": "pw-from-env"}})
	env := map[string]string{"MQTT_URL": br.URL(), "MQTT_USER": "edge", "MQTT_PASSWORD": "pw-from-env"}
	src := `
connector mqtt "${MQTT_URL}" client_id "flow-1" username "${MQTT_USER}" password "${MQTT_PASSWORD}" publish_timeout 5s

record sensor.temp {
  from "mqtt://sensors/+/temp" decode json qos 1
  buffer queue 64
}

pipeline alerts {
  from sensor.temp
  filter ` + "`temp > 25.0`" + `
  to "mqtt://alerts/{device}" encode json qos 1 content_type "application/json"
}
`
	g, err := dsl.Load(dsl.Options{Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }},
		dsl.Source{Name: "edge.flow", Src: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	creds := clientOpts{Subscribe: []string{"alerts/#"}, QoS: 1}
	url := "mqtt://edge:pw-from-env@" + br.Addr()
	sub := newClient(t, url, creds)
	run(t, g)
	pub := newClient(t, url, clientOpts{})
	pub.publish("sensors/d-1/temp", `{"device":"d-1","temp":20}`, 1)
	pub.publish("sensors/d-2/temp", `{"device":"d-2","temp":30}`, 1)
	m := sub.recv(10 * time.Second)
	if m.Topic != "alerts/d-2" || m.CT != "application/json" {
		t.Fatalf("got %+v", m)
	}
}

// TestFlowFileSettingErrors: the connector's setting errors are the kit's,
// so the DSL reports each at the setting it concerns (file:line:col of
// the setting's name), every one in one run.
func TestFlowFileSettingErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		{"misspelled connector setting", "connector mqtt \"mqtt://127.0.0.1:1\" clientid \"edge-1\"\n",
			[]string{`t.flow:1:37: connector mqtt: clientid: unknown setting (did you mean "client_id"?)`}},
		{"several connector settings", "connector mqtt \"mqtt://127.0.0.1:1\" keepalive 30\n    offline_policy Drop-Oldest max_inflight -1 password \"${PW}\"\n",
			[]string{
				`t.flow:1:37: connector mqtt: keepalive "30": a duration needs a unit: write 30s for seconds (or 30ms, 30m, ...)`,
				`t.flow:2:32: connector mqtt: max_inflight "-1": want a whole number from 0 to 65535`,
			}},
		{"qos out of range", "connector mqtt \"mqtt://127.0.0.1:1\"\nrecord r {\n  from \"mqtt://a/b\" decode json qos 3\n}\n",
			[]string{`t.flow:3:33: record r: "mqtt://a/b": qos "3": want a whole number from 0 to 2`}},
		{"misspelled link setting", "connector mqtt \"mqtt://127.0.0.1:1\"\nrecord r {\n  from \"mqtt://a/b\" decode json qoss 1\n}\n",
			[]string{`t.flow:3:33: record r: "mqtt://a/b": qoss: unknown inbound link setting (did you mean "qos"?)`}},
		{"group alias at its setting", "connector mqtt \"mqtt://127.0.0.1:1\"\nrecord r {\n  from \"mqtt://a/b\" decode json group \"x/y\"\n}\n",
			[]string{`t.flow:3:33: record r: "mqtt://a/b": group "x/y": not a valid group name (want a non-empty name without /, + or #)`}},
		{"TLS pairing at the setting", "connector mqtt \"mqtts://127.0.0.1:1\" cert_file \"/c.pem\"\n",
			[]string{`t.flow:1:38: connector mqtt: cert_file "/c.pem": needs key_file (the certificate's private key) as well`}},
		{"outbound link settings", "connector mqtt \"mqtt://127.0.0.1:1\"\nrecord r {\n  from \"mqtt://a/b\" decode json\n}\npipeline p {\n  from r\n  to \"mqtt://c\" encode json retain maybe message_expiry 60\n}\n",
			[]string{
				`t.flow:7:29: pipeline p: "mqtt://c": retain "maybe": want true or false`,
				`t.flow:7:42: pipeline p: "mqtt://c": message_expiry "60": a duration needs a unit: write 60s for seconds (or 60ms, 60m, ...)`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dsl.Load(dsl.Options{Getenv: func(string) (string, bool) { return "s3cret", true }},
				dsl.Source{Name: "t.flow", Src: []byte(tc.src)})
			var el *dsl.ErrorList
			if !errors.As(err, &el) {
				t.Fatalf("error %T %v, want *dsl.ErrorList", err, err)
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
