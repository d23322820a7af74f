// Package grpcconn connects aimdb-flow instances over gRPC with the
// versioned service aimdb.flow.v1.Flow (flowpb/flow.proto):
//
//   - Publish(stream Record) returns (stream Ack): records in, each
//     acknowledged once the receiving pipeline acknowledged it (the
//     envelope's Ack callback), so at-least-once holds across the hop;
//   - Subscribe(SubscribeRequest) returns (stream Record): the records a
//     server publishes to a topic, live, without acknowledgement.
//
// A connector is a server ("grpc://127.0.0.1:7000" with mode server: its
// inbound links are the topics clients Publish to, its outbound links the
// topics clients Subscribe to) or a client (the default: its outbound
// links Publish to a server, its inbound links Subscribe to one), so
// aimdb-flow instances chain edge → cloud. A client takes several
// addresses ("grpc://h1:7000,h2:7000") and balances over them
// (round_robin); it reconnects with the kit's backoff (kit.Supervisor).
// Record headers carry the trace context (W3C traceparent); TLS and mTLS
// come from the kit TLS settings (grpcs://), bearer tokens from kit.Secret
// (compared in constant time by the server). Server reflection is on.
package grpcconn
