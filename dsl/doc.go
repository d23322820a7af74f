// Package dsl reads .flow files into a pipeline.Graph.
//
// A file declares connectors (`connector NAME "URL" settings...`),
// records (`record NAME { from ... buffer ... to ... }`), pipelines
// (`pipeline NAME { from R; filter `expr`; set f `expr`; to "..." }`) and
// a graph-wide dead-letter link. Expressions are expr-lang, or CEL with
// the `cel` prefix; `${ENV}` and `${ENV:-default}` are substituted in
// strings, secrets included, and never echoed in errors.
//
// Load and LoadFiles lex, parse and compile, then validate the graph;
// every mistake in every file is reported at once as an ErrorList of
// `file:line:col: message` entries with a caret line, root causes first
// (follow-on errors of a failed declaration are suppressed). Settings a
// connector rejects are reported at the setting (pipeline.SettingError).
//
// The pipeline statements come from one table (statements.go); Format
// prints a file canonically. Package dsl/flowtest runs pipeline tests
// (input messages per source link, expected outputs per sink link) on a
// file's graph with every connector swapped for an in-process one.
package dsl
