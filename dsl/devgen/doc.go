// Package devgen turns a .flow file into a device program: it checks that
// the file stays inside the device subset and generates a small Go program
// on device/flow, device/mqtt and device/frame that TinyGo builds for a
// microcontroller (cortex-m-qemu), for WASI (wasip1) or for the host. It
// is what `aimdb-flow build` runs.
//
// Check reads parsed files (dsl.Parse; load them with dsl.Load first, so
// that they are valid on the server) and reports every construct outside
// the subset at its file:line:col with the reason, all at once, as a
// *dsl.ErrorList. The subset:
//
//   - connectors: mqtt:// (device/mqtt over a transport the board
//     provides; settings client_id, username, password, keepalive,
//     clean_start), sensor:// (readings from the --driver package) and
//     serial:// (a framed uplink, device/frame, outbound only);
//   - records with a fixed-capacity buffer: ring N (N <= MaxRing) or
//     latest; inbound links on sensor:// or mqtt:// (a fixed topic filter,
//     decode json, qos 0 or 1); outbound links as for pipelines;
//   - pipelines: from, filter and map (expr-lang expressions inside the
//     device/expr subset; a map is a map literal), one output: into RECORD
//     or one to "mqtt://TOPIC" (a fixed topic, encode json or binflat,
//     qos 0 or 1, retain) or to "serial-connector://TOPIC".
//
// Outside it, with the reason in each message: CEL, windows, batch,
// split, set, dedupe, throttle, log, parallel, decode/encode stages, dead
// letters, Kafka, HTTP, file, stdio and gen connectors, TLS, queue and
// mailbox buffers (and records without a buffer: the server default is a
// queue), templated destinations, keys, other codecs.
//
// Generate renders the checked Device as one gofmt'ed main package for a
// target; WriteModule writes it with a go.mod (replace directives point at
// the aimdb-flow checkout and the driver's module) so that TinyGo, or the
// user keeping it (aimdb-flow build --emit DIR), can build it.
//
// A sensor://NAME source is bound at build time to the driver package:
// it must export `func Open() (flow.Sensors, error)` (see
// device/flow.Sensors). On the server, the registry serves sensor:// with
// the gen connector (connectors/gen.SensorFactory), so the same file runs
// there on simulated readings (the link's rate, count, seed and template
// settings). On the device, rate is the reading period; template, count
// and seed are the simulation's only and are ignored.
package devgen
