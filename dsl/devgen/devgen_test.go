package devgen_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/dsl/devgen"
)

func check(t *testing.T, src string, env map[string]string) (*devgen.Device, error) {
	t.Helper()
	errs := &dsl.ErrorList{}
	f := dsl.Parse("t.flow", []byte(src), errs)
	if errs.Len() > 0 {
		t.Fatalf("parse: %v", errs.Err())
	}
	return devgen.Check(devgen.Options{Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}, f)
}

const bt = "`"

// TestCheckReportsWhatIsOutsideTheSubset: every construct outside the
// device subset, at its position, with its reason, all at once.
func TestCheckReportsWhatIsOutsideTheSubset(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"server-only stages and expressions", `connector mqtt "mqtt://h:1883" client_id "d"
record a { from "mqtt://in" decode json
  buffer ring 8 }
pipeline p {
  from a
  filter cel ` + bt + `temp > 1.0` + bt + `
  window tumbling 10s
  batch 10 every 1s
  split
  map ` + bt + `{"t": temp matches "x"}` + bt + `
  to "mqtt://out/{device}" encode json
}`, []string{
			"t.flow:6:10: filter: CEL is not in the device build (write the expression in expr-lang: device/expr evaluates its common subset)",
			"t.flow:7:3: windows are not in the device build (they need timers and per-window state)",
			"t.flow:8:3: batch is not in the device build (records leave a device one by one)",
			"t.flow:9:3: split is not in the device build (a device record is flat: no lists)",
			"t.flow:10:19: map: device/expr: regular expressions (matches) is outside the device subset",
			`t.flow:11:6: to "mqtt://out/{device}": a templated destination is not in the device build: the topic is fixed at build time`,
		}},
		{"server connectors, buffers and dead letters", `connector k "kafka://h:9092"
connector h "http://127.0.0.1:8080"
connector f "file:///tmp"
connector g "gen://"
connector s "mqtts://h:8883" client_id "x"
record a { from "k://in" decode json }
record b { from "h://x" decode json
  buffer queue 10 }
record c { from "g://x" decode json
  buffer mailbox }
record d { from "f://x" decode json
  buffer ring 64 }
deadletter "f://dead.jsonl"
`, []string{
			"t.flow:1:13: connector k: kafka:// is not in the device build (device connectors: mqtt://, sensor://, serial://)",
			"t.flow:2:13: connector h: http:// is not in the device build (device connectors: mqtt://, sensor://, serial://)",
			"t.flow:3:13: connector f: file:// is not in the device build (device connectors: mqtt://, sensor://, serial://)",
			`t.flow:4:13: connector g: gen:// is not in the device build; for a sensor write connector g "sensor://" (the server simulates it with the gen connector, a device build reads it from the --driver package)`,
			"t.flow:5:13: connector s: mqtts:// (TLS) is not in the device build: the board's network driver provides TLS if it has any; write mqtt://",
			"t.flow:6:1: record a: a device build needs a fixed-capacity buffer: add buffer ring N (N <= 32) or buffer latest (the server default, queue 1024, is not in the device subset)",
			`t.flow:6:17: from "k://in": connector k (kafka://, at t.flow:1:1) is not in the device build`,
			`t.flow:7:17: from "h://x": connector h (http://, at t.flow:2:1) is not in the device build`,
			"t.flow:8:10: record b: buffer queue is not in the device build: a full queue would block the device's main loop (use ring N or latest)",
			`t.flow:9:17: from "g://x": connector g (gen://, at t.flow:4:1) is not in the device build`,
			"t.flow:10:10: record c: buffer mailbox is not in the device build (use latest: one slot, readers see the current value)",
			`t.flow:11:17: from "f://x": connector f (file://, at t.flow:3:1) is not in the device build`,
			"t.flow:12:15: record d: buffer ring 64 is too large for a device: a ring of N holds N+2 messages of 192 bytes in RAM (at most ring 32)",
			"t.flow:13:1: deadletter is not in the device build (a device counts failed records in its pipelines' Stats().Errors)",
		}},
		{"link settings, codecs, outputs", `connector mqtt "mqtt://h:1883" client_id "d" max_inflight 8 keepalive 30s
connector mqtt2 "mqtt://h2:1883" client_id "e"
connector sensor "sensor://"
record a { from "sensor://t" decode json rate 4 template ` + bt + `{}` + bt + `
  buffer ring 4 }
record b { from "mqtt://sp" decode msgpack qos 2
  buffer latest }
pipeline p {
  from a
  filter ` + bt + `temp > 1.0` + bt + `
  map ` + bt + `temp + 1` + bt + `
  set x ` + bt + `1` + bt + `
  into b
  to "mqtt://o" encode json key ` + bt + `device` + bt + ` qos 1
  to "mqtt://o2" encode msgpack
}`, []string{
			"t.flow:1:46: connector mqtt: setting max_inflight is not in the device build (device/mqtt takes client_id, username, password, keepalive, clean_start)",
			"t.flow:2:1: connector mqtt2: a device build has one MQTT connector (mqtt, at t.flow:1:1)",
			`t.flow:6:36: from "mqtt://sp": decode msgpack is not in the device build (json or binflat)`,
			`t.flow:6:48: from "mqtt://sp": qos 2 is not in the device build (device/mqtt subscribes at qos 0 or 1)`,
			"t.flow:11:7: map: a device map is a map literal `{\"field\": expr, ...}`",
			"t.flow:12:3: set is not in the device build (write the fields in a map literal: map `{\"field\": expr, ...}`)",
			"t.flow:14:3: pipeline p: a device pipeline has one output, into RECORD or one to (the first is at t.flow:13:3)",
			`t.flow:14:29: to "mqtt://o": key is not in the device build (device links carry no message key)`,
			"t.flow:15:3: pipeline p: a device pipeline has one output, into RECORD or one to (the first is at t.flow:13:3)",
			`t.flow:15:25: to "mqtt://o2": encode msgpack is not in the device build (json or binflat)`,
		}},
		{"an expression error on a later line of a multi-line expression", `connector mqtt "mqtt://h:1883" client_id "d"
record a { from "mqtt://in" decode json
  buffer latest }
pipeline p {
  from a
  filter ` + bt + `temp > 1.0 &&
    device ?? "x" == "y"` + bt + `
  to "mqtt://o" encode json
}`, []string{
			"t.flow:7:12: filter: device/expr: nil coalescing (??) is outside the device subset",
		}},
		{"serial: frames out, none in; sensors have no settings", `connector dev "serial:///dev/ttyACM0" baud 115200
connector sensor "sensor://" rate 5
record a { from "dev://cmd" decode json
  buffer latest }
record b { from "sensor://x" decode json seed 3 interval 5s
  buffer latest
  to "sensor://y" encode json }
`, []string{
			"t.flow:2:30: connector sensor: sensor:// takes no settings (rate belongs to the link)",
			`t.flow:3:17: from "dev://cmd": a serial source is the edge host's side of the uplink: a device build writes frames (to "dev://cmd" in a pipeline) and reads none`,
			`t.flow:5:49: from "sensor://x": setting interval is not in the device build (a sensor link takes rate)`,
			`t.flow:7:6: to "sensor://y": sensor:// is a source only`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := check(t, tt.src, nil)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// deviceFlow is pipelines/device.flow's shape with a serial uplink added.
const deviceFlow = `connector mqtt "${MQTT_URL:-mqtt://127.0.0.1:1883}" client_id "${DEVICE_ID:-d-1}" keepalive 30
connector sensor "sensor://"
connector dev "serial:///dev/ttyACM0"
record temp.raw {
  from "sensor://temp" decode json rate 10
  buffer ring 16
}
record setpoint {
  from "mqtt://devices/${DEVICE_ID:-d-1}/setpoint" decode json qos 0
  buffer latest
}
record hot {
  buffer latest
  to "dev://hot" encode binflat
}
pipeline report {
  from temp.raw
  filter ` + bt + `temp > 40.0` + bt + `
  map ` + bt + `{"temp": temp, "seq": seq, "over": true}` + bt + `
  to "mqtt://sensors/${DEVICE_ID:-d-1}/alert" encode json qos 1 retain true
}
pipeline heat {
  from temp.raw
  filter ` + bt + `temp > 44.0` + bt + `
  into hot
}
`

func TestCheckReadsTheDeviceGraph(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"defaults", nil, `mqtt 127.0.0.1:1883 client_id d-1
sensor temp -> temp.raw every 100ms
record temp.raw ring 16
record setpoint latest <- mqtt devices/d-1/setpoint qos 0 json
record hot latest
pipeline hot to hot from hot -> serial hot binflat qos 0
pipeline report from temp.raw | filter temp > 40.0 | map {"temp": temp, "seq": seq, "over": true} -> mqtt sensors/d-1/alert json qos 1
pipeline heat from temp.raw | filter temp > 44.0 -> into hot
`},
		{"environment resolved at build time", map[string]string{"DEVICE_ID": "d-9", "MQTT_URL": "mqtt://user:pw@10.0.0.2:1884"}, `mqtt 10.0.0.2:1884 client_id d-9
sensor temp -> temp.raw every 100ms
record temp.raw ring 16
record setpoint latest <- mqtt devices/d-9/setpoint qos 0 json
record hot latest
pipeline hot to hot from hot -> serial hot binflat qos 0
pipeline report from temp.raw | filter temp > 40.0 | map {"temp": temp, "seq": seq, "over": true} -> mqtt sensors/d-9/alert json qos 1
pipeline heat from temp.raw | filter temp > 44.0 -> into hot
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := check(t, deviceFlow, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.String(); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
			if d.MQTT.KeepAlive.Seconds() != 30 || d.Pipelines[1].Out.Retain != true {
				t.Errorf("keepalive %v, retain %v", d.MQTT.KeepAlive, d.Pipelines[1].Out.Retain)
			}
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	d, err := check(t, deviceFlow, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		opts devgen.GenOptions
		want string
	}{
		{devgen.GenOptions{Target: "esp32", Driver: "x/y"}, `devgen: unknown target "esp32" (want cortex-m-qemu, wasip1, host)`},
		{devgen.GenOptions{Target: "cortex-m-qemu"}, "t.flow:5:8: sensor://temp needs a driver: aimdb-flow build --driver PKG (a package with func Open() (flow.Sensors, error), see device/flow.Sensors)"},
		{devgen.GenOptions{Target: "host", Driver: "x/y"}, "devgen: a host build talks MQTT over stdin/stdout and has no stream left for the serial uplink (dev): build for cortex-m-qemu (MQTT on UART1, frames on UART0) or drop one"},
	}
	for _, tt := range tests {
		if _, err := devgen.Generate(d, tt.opts); err == nil || err.Error() != tt.want {
			t.Errorf("%+v: err = %v, want %s", tt.opts, err, tt.want)
		}
	}
}

// TestGeneratedProgramsCompile generates device.flow-like programs for
// every target and compiles them with the Go toolchain (GOOS/GOARCH of
// each target where Go has one): TinyGo itself is tested by
// pipelines/devicebuild_test.go.
func TestGeneratedProgramsCompile(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	noSerial := strings.Replace(strings.Replace(deviceFlow, `connector dev "serial:///dev/ttyACM0"`, "", 1),
		"record hot {\n  buffer latest\n  to \"dev://hot\" encode binflat\n}", "record hot {\n  buffer latest\n}", 1)
	tests := []struct {
		name, src, target string
		goos, goarch      string
		want              []string // in the source
	}{
		{"host", noSerial, "host", "linux", "amd64", []string{
			"// Command t is t.flow built for a device (target host) by aimdb-flow build.",
			"\tdriver \"github.com/aimdb-dev/aimdb-flow/examples/device/replay\"",
			"f.Pipeline(\"report\").From(recTempRaw).\n\t\tFilter(`temp > 40.0`).\n\t\tMap(`{\"temp\": temp, \"seq\": seq, \"over\": true}`).\n\t\tTo(\"sensors/d-1/alert\", mqtt.NewSink(client, mqtt.SinkOptions{Codec: jsonflat.Codec{}, QoS: mqtt.QoS1, Retain: true, MaxPayload: 160, Clock: clock}))",
			"{Topic: \"devices/d-1/setpoint\", QoS: mqtt.QoS0, Handler: mqtt.NewRecordSource(recSetpoint, jsonflat.Codec{}, 16, 128)}",
			"recTempRaw := f.Record(\"temp.raw\", buffer.Config{Kind: buffer.Ring, Size: 16})",
			"syscall.SetNonblock(0, true)",
		}},
		{"wasip1", noSerial, "wasip1", "wasip1", "wasm", []string{"func (stdio) Read(b []byte) (int, error)  { return os.Stdin.Read(b) }"}},
		// cortex-m-qemu's UART transport needs runtime/volatile (TinyGo
		// only): checked for its frame uplink and syntax here.
		{"cortex-m-qemu", deviceFlow, "cortex-m-qemu", "", "", []string{
			"uplink := frame.NewWriter(os.Stdout, 256)",
			"To(\"hot\", flow.NewFrameSink(uplink, binflat.Codec{}, 160))",
			"// console is silent: UART0 carries the framed uplink.",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := check(t, tt.src, nil)
			if err != nil {
				t.Fatal(err)
			}
			src, err := devgen.Generate(d, devgen.GenOptions{Target: tt.target, Driver: "github.com/aimdb-dev/aimdb-flow/examples/device/replay"})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(src), w) {
					t.Errorf("generated code lacks %q:\n%s", w, src)
				}
			}
			if tt.goos == "" {
				return
			}
			dir := t.TempDir()
			if err := devgen.WriteModule(dir, "t", src, devgen.ModuleOptions{FlowDir: root}); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("go", "vet", ".")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOOS="+tt.goos, "GOARCH="+tt.goarch, "GOFLAGS=-mod=mod", "GOWORK=off")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go vet of the generated program: %v\n%s\n%s", err, out, src)
			}
		})
	}
}
