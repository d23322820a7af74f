// Package pipeline is the core of aimdb-flow: records, pipelines, the
// connector SPI and the Runner that drives them.
//
// A Graph declares connectors (Builders, named by scheme), records (a
// named value with a buffer and at most one writer: inbound links or one
// pipeline) and pipelines (from one record, through stages, into a record
// and/or to outbound links). Graph.Validate checks the whole declaration
// at once and reports every mistake with its position (ValidationError);
// NewRunner validates and prepares; Runner.Run starts everything and
// returns after a bounded drain once its context ends, or by itself when
// every source is finite and done.
//
// # Invariants
//
//   - At-least-once: a source message is acknowledged (Ack) only after
//     every record it reached was handled by every pipeline and sink that
//     reads it: published and confirmed, filtered out, or dead-lettered.
//     A message that could be neither is rejected (nacked), so a source
//     that can redeliver does.
//   - Bad input never stops a run: an undecodable or oversized payload, a
//     stage error or panic, an encoder or publish failure dead-letters the
//     record with its provenance (pipeline, stage, record, link, cause)
//     and the run goes on.
//   - The runner owns outcomes: a connector reports what happened to a
//     record (Publish's error, or the ack share an AsyncPublisher
//     finishes, classified with Permanent) and the runner decides between
//     acknowledging, dead-lettering and rejecting.
//   - A record has one writer; a lossless buffer (queue) applies
//     backpressure to its writer, a lossy one (ring, latest) never blocks
//     it and counts what readers missed.
//   - Envelope payload and key bytes are never written once in an
//     envelope; the Envelope struct itself is copied, not shared.
//   - Connectors declare what they can do (Caps); the core holds no
//     connector-specific knowledge.
//   - Shutdown is bounded by RunOptions.DrainTimeout, also for stages that
//     ignore cancellation (ErrDrainTimeout).
//
// A running graph is inspectable without cost to the data path: Stats
// (counters), Latest (the value a record's buffer holds), Watch (live
// values offered without blocking: a slow watch drops and counts) and Set
// (a value into a record declared settable); observability/api serves
// them over HTTP.
//
// Connectors implement Builder and Connector, and optionally Source,
// AsyncPublisher, Flusher, Readiness, FiniteSource, LinkOptionParser,
// LinkOptionValidator, LinkChecker and CapsDeclarer; connectors/kit gives
// them typed settings, TLS and header mapping, and connectors/conntest is
// the suite each one passes. docs/connectors.md shows a complete one.
package pipeline
