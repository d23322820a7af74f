// Package registry maps endpoint URL schemes to connector factories, so the
// DSL can build a connector from `connector NAME "scheme://..."`. There is
// no global registry: callers build one with Default and may add their own
// schemes.
package registry

import (
	"fmt"
	"sort"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/connectors/file"
	"github.com/aimdb-dev/aimdb-flow/connectors/gen"
	grpcconn "github.com/aimdb-dev/aimdb-flow/connectors/grpc"
	httpconn "github.com/aimdb-dev/aimdb-flow/connectors/httpconn"
	"github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/connectors/knx"
	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/connectors/modbus"
	"github.com/aimdb-dev/aimdb-flow/connectors/mqtt"
	"github.com/aimdb-dev/aimdb-flow/connectors/opcua"
	"github.com/aimdb-dev/aimdb-flow/connectors/serial"
	"github.com/aimdb-dev/aimdb-flow/connectors/ws"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Registry maps a scheme ("mqtt", "kafka", "file") to its factory.
type Registry map[string]pipeline.Factory

// Default returns a registry with every built-in connector.
func Default() Registry {
	r := Registry{
		"mem":   mem.Factory,
		"file":  file.Factory,
		"stdio": file.StdioFactory,
		"gen":   gen.Factory,
		// sensor://NAME: a device driver in a device build (aimdb-flow
		// build), simulated by the gen connector on the server.
		gen.SensorScheme: gen.SensorFactory,
	}
	// Connector packages with network I/O register here.
	r["http"], r["https"] = httpconn.Factory, httpconn.Factory
	r[kafka.Scheme] = kafka.Factory
	r["mqtt"], r["mqtts"], r["embedded"] = mqtt.Factory, mqtt.Factory, mqtt.EmbeddedFactory
	r["serial"] = serial.Factory
	r["ws"], r["wss"] = ws.Factory, ws.Factory
	r[knx.Scheme] = knx.Factory
	r["grpc"], r["grpcs"] = grpcconn.Factory, grpcconn.Factory
	r["modbus"], r["modbus+tls"], r["modbus+rtu"] = modbus.Factory, modbus.Factory, modbus.Factory
	r[opcua.Scheme] = opcua.Factory
	return r
}

// Build creates the builder for an endpoint URL.
func (r Registry) Build(endpoint string, p pipeline.Params) (pipeline.Builder, error) {
	scheme, _, ok := strings.Cut(endpoint, "://")
	if !ok || scheme == "" {
		scheme = endpoint // "stdio", "gen", "mem" may be written bare
	}
	f, ok := r[scheme]
	if !ok {
		return nil, fmt.Errorf("unknown connector scheme %q (known: %s)", scheme, strings.Join(r.Schemes(), ", "))
	}
	return f(endpoint, p)
}

// Schemes lists the registered schemes, sorted.
func (r Registry) Schemes() []string {
	out := make([]string, 0, len(r))
	for s := range r {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
