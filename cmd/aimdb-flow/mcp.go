package main

import (
	"context"
	"fmt"
	"io"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aimdb-dev/aimdb-flow/observability/mcpflow"
)

const mcpHelp = `
Serves the Model Context Protocol on stdin/stdout for an AI assistant,
over the records API of a running instance (aimdb-flow run --http): tools
to list and read records, watch a record for some seconds, read the graph
and the stats, explain why a record is not flowing, and validate .flow
text. Read-only unless --allow-set, which adds set_record (the instance
still needs its token for it).

  {"mcpServers": {"aimdb-flow": {"command": "aimdb-flow",
    "args": ["mcp", "--connect", "127.0.0.1:8080"]}}}`

func cmdMCP(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "mcp")
	rf := addRemoteFlags(fs, false)
	allowSet := fs.Bool("allow-set", false, "offer the set_record tool")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "aimdb-flow mcp: takes no arguments\n")
		return exitUsage
	}
	if !rf.remote(env) {
		fmt.Fprintf(env.stderr, "aimdb-flow mcp: name the instance with --connect URL (or %s)\n", connectEnv)
		return exitUsage
	}
	srv := mcpflow.New(rf.client(env), mcpflow.Options{AllowSet: *allowSet, Version: version})
	t := &mcp.IOTransport{Reader: io.NopCloser(env.stdin), Writer: nopWriteCloser{env.stdout}}
	if err := srv.Run(ctx, t); err != nil && ctx.Err() == nil {
		fmt.Fprintf(env.stderr, "aimdb-flow mcp: %v\n", err)
		return exitProblems
	}
	return exitOK
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
