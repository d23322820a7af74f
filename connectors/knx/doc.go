// Package knx is the KNX connector: it talks KNXnet/IP tunnelling over
// UDP to a KNX/IP gateway or router (knxd, an IP interface) and maps group
// telegrams to records and back. The protocol engine (framing, cEMI,
// sequence counters, heartbeats) is package knxnet, pure and fuzzed; the
// datapoint types are package dpt; this package is the I/O adapter on
// connectors/kit.
//
// Endpoint: connector NAME "knx://HOST[:PORT]" (port 3671 by default).
//
// Inbound links name a group address or a pattern with wildcards per
// level ("knx://1/2/3", "knx://1/2/*", "knx://1/*/*", "knx://*", two-level
// "knx://1/515" and free "knx://4660" forms too). Every GroupValueWrite
// and GroupValueResponse on the bus is dispatched to each link whose
// pattern matches, with env.Topic set to the link's address and the
// telegram's group address in the header knx_group (in the link's
// style), its sender in knx_source and the service in knx_service. With
// `dpt "9.001"` the payload is a JSON object (value, unit, dpt, ga, src,
// service; decode it with `decode json`); without a DPT, or for a main
// type this connector does not know, it is the group value's bytes.
//
// Outbound links name one group address; each record is sent as a
// GroupValueWrite (or `service response`), encoded by the link's DPT from
// a JSON value or an object with a "value" field. A value that does not
// fit the DPT is a pipeline.Permanent error (dead-lettered by the
// runner). Publish returns when the gateway confirmed the telegram
// (L_Data.con).
//
// The tunnel is owned by a kit.Supervisor: it reconnects with backoff
// after a heartbeat failure, a missing TUNNELLING_ACK (after one retry),
// a DISCONNECT from the gateway or a socket error; readiness follows the
// tunnel. Rejected datagrams are counted by reason (Stats). See
// docs/knx.md for every setting.
package knx
