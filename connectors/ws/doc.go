// Package ws is a WebSocket client connector (RFC 6455, through
// github.com/coder/websocket): inbound links receive text or binary
// messages from a WebSocket server as records, outbound links send records
// as messages.
//
// Endpoint (connector NAME "..."): the server's base URL, ws://host:port
// or wss://host:port, optionally with a base path. A link's address is a
// path under it: `from "feed://ticker"` on `connector feed
// "ws://127.0.0.1:8080/v1"` opens ws://127.0.0.1:8080/v1/ticker; the empty
// address ("feed://") is the base URL itself.
//
// One connection per address: every inbound and outbound link with the
// same address shares it. Each connection is owned by a kit.Supervisor:
// dialled, served and redialled with backoff after it fails; after every
// (re)connect the connection first sends the `subscribe` message of each
// inbound link on it, in declaration order, then reads. Ping frames are
// sent every `ping_interval`; a pong that does not come within
// `ping_timeout` ends the connection (and starts a redial).
//
// Delivery: WebSocket has no acknowledgements. Inbound records carry no
// ack (the runner treats the source as one that cannot redeliver: a
// failure downstream is dead-lettered, not retried at the peer); a
// Publish returns once the message was written to the connection, and
// fails fast while the connection is down, so the runner retries it or
// dead-letters it. A message over `max_message` ends the connection with
// status 1009 (the peer is told why) and is counted.
//
// Settings (connector): ping_interval DURATION (20s; 0 turns pings off),
// ping_timeout DURATION (10s), dial_timeout DURATION (10s), write_timeout
// DURATION (10s), max_message SIZE (1MiB), token SECRET (sent as
// "Authorization: Bearer ..."), header_<Name> VALUE (a request header of
// the handshake), subprotocol NAME, origin URL, and the TLS settings of
// connectors/kit (ca_file, cert_file, key_file, insecure_skip_verify,
// server_name, tls_min_version) for wss. Inbound link: subscribe TEXT
// (sent after every connect). Outbound link: message text|binary (text).
package ws
