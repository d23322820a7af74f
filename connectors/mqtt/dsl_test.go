package mqtt_test

import (
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
