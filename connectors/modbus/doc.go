// Package modbus connects pipelines to Modbus devices (PLCs, meters,
// gateways) and serves pipeline state to Modbus clients (SCADA, HMIs),
// over Modbus/TCP, Modbus/TCP Security (mutual TLS) and Modbus RTU on a
// serial line, with github.com/simonvetter/modbus as the protocol stack.
//
// Endpoints (connector NAME "..."):
//
//	modbus://host:port         Modbus/TCP (default port 502)
//	modbus+tls://host:port     Modbus/TCP Security, mutual TLS (default port 802)
//	modbus+rtu:///dev/ttyUSB0  Modbus RTU (settings baud, data_bits, parity, stop_bits)
//
// A client (the default, `mode client`) polls register maps (`from`
// links) and writes records into coils and holding registers (`to`
// links). A server (`mode server`) listens on the endpoint and serves the
// latest values its `to` links were given; its `from` links name the
// registers clients may write, and each write becomes a record.
//
// A link declares its register map with one setting per field:
//
//	record boiler {
//	  from "plc://boiler" decode json interval 500ms
//	      field.temp    "input 0 float32 scale 0.1"
//	      field.running "coil 3"
//	}
//
// A record's value is a JSON object of the fields, in table and address
// order: {"running":true,"temp":21.5}. regmap (the engine, apart from
// I/O) describes the field grammar; docs/modbus.md lists every setting.
//
// Failures never stop the pipeline: a Modbus exception, a timeout or a
// malformed answer is counted (Stats), logged without flooding, and a
// timeout or a broken frame reopens the connection (readiness says why
// until it is back). A record the map cannot take is a
// pipeline.Permanent publish error (dead-lettered by the runner); a
// timeout or transport failure is a plain error (retried).
package modbus
