// Package api serves the records API of a running aimdb-flow graph: JSON
// over HTTP plus a Server-Sent Events stream, mounted under /api/v1/ on
// the --http listener of aimdb-flow run, and the Go client the CLI's
// records and graph subcommands use.
//
//	GET  /api/v1/records              every record: buffer, writer, readers, counters, rates, last update
//	GET  /api/v1/records/{name}       one record
//	GET  /api/v1/records/{name}/value its latest value
//	PUT  /api/v1/records/{name}/value set a value (settable records only; needs the token)
//	GET  /api/v1/watch?records=P,...  live values of the records matching the patterns (SSE)
//	GET  /api/v1/watchers             the open watches with their sent and dropped counts
//	GET  /api/v1/graph                connectors, records, pipelines and links with live counters
//	GET  /api/v1/timings              per-hop (per-stage) latency, when run with --hop-latency
//
// docs/api.md documents the API and docs/api.openapi.yaml describes it.
//
// # Invariants
//
//   - Nothing is paid per record while nobody watches: the latest value is
//     the one the record's buffer already holds (Runner.Latest), counters
//     are the runner's (Runner.Stats), rates are computed from samples of
//     those counters at most once a second, and a write checks one atomic
//     pointer for watchers.
//   - A watcher never blocks the graph: values are offered to it without
//     blocking and a slow watcher loses values, counted in its stream
//     (each event's "dropped") and in /api/v1/watchers.
//   - With a token configured every /api/v1 request must carry it
//     (Authorization: Bearer TOKEN), compared in constant time; setting a
//     value needs a token even on loopback, and is refused in read-only
//     mode. Request bodies are size-limited.
//   - No secret appears in a response: connector endpoints are shown with
//     their password and credential-like query parameters redacted,
//     connector and link settings are never shown, and header values whose
//     names look like credentials are redacted.
package api
