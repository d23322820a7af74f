// Package mcpflow is a Model Context Protocol server for a running
// aimdb-flow instance: it talks to the instance's records API
// (observability/api) and offers its contents as MCP tools, for an AI
// assistant to inspect a pipeline. aimdb-flow mcp --connect URL serves
// it over stdio.
//
// Tools: list_records, read_record, watch_record (for N seconds, bounded),
// read_graph, read_stats, explain_record (why a record is not flowing:
// readiness, writes, drops and lag, dead letters, stage errors) and
// validate_flow (check .flow text without running it). set_record is
// offered only when Options.AllowSet is true; the instance still needs
// its token for it.
package mcpflow
