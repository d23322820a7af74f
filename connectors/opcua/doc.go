// Package opcua is the OPC UA client connector (github.com/gopcua/opcua).
//
// A connector `connector plc "opc.tcp://host:4840/path"` opens one
// session to the server, supervised by kit.Supervisor: it reconnects with
// backoff after the server went away, re-creates every subscription, and
// is ready only while the session is live.
//
// Inbound links (`from "plc://ns=2;s=Machine/Temp"`) are subscriptions
// with one monitored item on the node's Value attribute; every data change
// becomes a record (JSON: node, value, type, status, source and server
// timestamps, or the value alone with `payload value`). A link address
// that starts with "/" is a browse path from the Objects folder
// ("/2:Machine/2:Temp"), resolved to a node id at every session start.
// A data change with a Bad status, or a value larger than max_value, is
// handed to the runner's dead-letter path (pipeline.Rejecter) with the
// reason.
//
// Outbound links (`to "plc://ns=2;s=Machine/Setpoint"`) write a record's
// value to the node, converted to the node's data type (read once per
// session); a value that does not convert, or a write the server refuses
// for the value itself, is a pipeline.Permanent error, so the runner
// dead-letters the record. docs/opcua.md lists every setting.
package opcua
