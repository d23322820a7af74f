// Package kit is what connectors share, so that each connector is a small
// protocol adapter and every connector reads its configuration the same
// way:
//
//   - Settings, one typed reader over pipeline.Params (the `name value`
//     pairs of a connector declaration or a link) with one grammar for
//     durations (ParseDuration), sizes (ParseSize), booleans (ParseBool),
//     whole and decimal numbers, enumerations and secrets; every problem is
//     collected and returned at once, each naming its setting so the DSL
//     reports it at the setting's `file:line:col`; unknown settings get a
//     "did you mean" suggestion.
//   - TLS, ReadTLS and TLSConfig / ServerTLSConfig: one set of TLS settings
//     (ca_file, cert_file, key_file, insecure_skip_verify, server_name,
//     tls_min_version) and one builder.
//   - Secret: a credential that never shows its value.
//   - Header mapping between pipeline.Headers and protocol header lists
//     (FromPairs, AppendPairs for MQTT user properties and Kafka headers;
//     FromHTTP, ToHTTP and HeaderFilter for HTTP).
//   - Supervisor: the connect/reconnect loop (one long-lived session at a
//     time, backoff reset after a healthy session, readiness with the last
//     failure's reason, bounded shutdown), so a connector supplies only
//     Connect and its Session (the protocol adapter).
//
// docs/settings.md describes the grammar for users.
package kit
