package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aimdb-dev/aimdb-flow/observability/api"
)

const recordsHelp = `
Talks to a running instance (aimdb-flow run --http ADDR) through its
records API:

  records ls                     every record: buffer and occupancy, writer,
                                 readers, writes, rate, drops, last update
  records get NAME               a record's latest value
  records watch PATTERN...       live values of the matching records until
                                 interrupted (or --count values); a pattern
                                 matches one dotted level per * (sensor.*)
                                 and any number of levels with ** (sensor.**)
  records set NAME VALUE         set a settable record to a JSON value
                                 (VALUE - reads it from stdin)

--connect names the instance (or AIMDB_FLOW_CONNECT), --token its token
(or AIMDB_FLOW_TOKEN): setting a record always needs it. Output is a table
or text; --json prints what the API returns (watch: one event per line).

  aimdb-flow records ls --connect 127.0.0.1:8080
  aimdb-flow records watch --connect 127.0.0.1:8080 'sensor.*'
  AIMDB_FLOW_TOKEN=s3cret aimdb-flow records set --connect 127.0.0.1:8080 setpoint '{"temp": 21.5}'`

func cmdRecords(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "records")
	rf := addRemoteFlags(fs, true)
	count := fs.Int("count", 0, "watch: stop after `N` values (0: until interrupted)")
	buf := fs.Int("buffer", 0, "watch: values the server holds for this watch before it drops (0: its default)")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	usage := func(msg string) int {
		fmt.Fprintf(env.stderr, "aimdb-flow records: %s; 'aimdb-flow records --help' explains\n", msg)
		return exitUsage
	}
	if fs.NArg() == 0 {
		return usage("name a subcommand: ls, get, watch or set")
	}
	if !rf.remote(env) {
		return usage("name the instance with --connect URL (or " + connectEnv + ")")
	}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	c := rf.client(env)
	name := "records " + sub
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	switch sub {
	case "ls", "list":
		if len(rest) > 0 {
			return usage("ls takes no arguments")
		}
		recs, err := c.Records(rctx)
		if err != nil {
			return remoteError(env, name, err)
		}
		if *rf.json {
			printJSON(env, recs)
		} else {
			recordTable(env, recs)
		}
	case "get":
		if len(rest) != 1 {
			return usage("get takes one record name")
		}
		v, err := c.Value(rctx, rest[0])
		if err != nil {
			return remoteError(env, name, err)
		}
		if *rf.json {
			printJSON(env, v)
		} else {
			printValue(env, v, true)
		}
	case "watch":
		if len(rest) == 0 {
			return usage("watch takes record names or patterns, e.g. 'sensor.*'")
		}
		return watchRecords(ctx, env, c, rest, *count, *buf, *rf.json)
	case "set":
		if len(rest) != 2 {
			return usage("set takes a record name and a JSON value")
		}
		val := []byte(rest[1])
		if rest[1] == "-" {
			b, err := io.ReadAll(io.LimitReader(env.stdin, api.DefaultMaxBody+1))
			if err != nil {
				fmt.Fprintf(env.stderr, "aimdb-flow %s: reading stdin: %v\n", name, err)
				return exitProblems
			}
			val = bytes.TrimSpace(b)
		}
		if !json.Valid(val) {
			return usage(fmt.Sprintf("set: %q is not a JSON value (quote strings: '\"on\"')", string(val)))
		}
		v, err := c.Set(rctx, rest[0], val)
		if err != nil {
			return remoteError(env, name, err)
		}
		if *rf.json {
			printJSON(env, v)
		} else {
			fmt.Fprintf(env.stdout, "set %s = %s\n", v.Record, compactJSON(v.Value))
		}
	default:
		return usage(fmt.Sprintf("unknown subcommand %q (want ls, get, watch or set)", sub))
	}
	return exitOK
}

// watchRecords prints the values of the watched records as they come.
func watchRecords(ctx context.Context, env *cliEnv, c *api.Client, patterns []string, count, buf int, asJSON bool) int {
	var n int
	var dropped uint64
	enc := json.NewEncoder(env.stdout)
	err := c.Watch(ctx, patterns, api.WatchOptions{Buffer: buf, OnHello: func(h api.Hello) {
		if !asJSON {
			fmt.Fprintf(env.stderr, "watching %s\n", strings.Join(h.Records, ", "))
		}
	}}, func(ev api.Event) error {
		if ev.Dropped > dropped && !asJSON {
			fmt.Fprintf(env.stderr, "(%d values dropped: this watch did not keep up)\n", ev.Dropped-dropped)
		}
		dropped = ev.Dropped
		if asJSON {
			if err := enc.Encode(ev); err != nil {
				return err
			}
		} else {
			printValue(env, ev.Value, false)
		}
		n++
		if count > 0 && n >= count {
			return api.ErrStop
		}
		return nil
	})
	if err != nil {
		return remoteError(env, "records watch", err)
	}
	return exitOK
}

// printValue prints a value: one line (watch) or a short block (get).
func printValue(env *cliEnv, v api.Value, block bool) {
	body := compactJSON(v.Value)
	if v.Value == nil && v.Payload != nil {
		body = fmt.Sprintf("(%d bytes, not JSON)", len(v.Payload))
	}
	if !block {
		fmt.Fprintf(env.stdout, "%s  %s  %s\n", v.Time.Local().Format("15:04:05.000"), v.Record, body)
		return
	}
	fmt.Fprintf(env.stdout, "record  %s\ntime    %s\n", v.Record, v.Time.Local().Format(time.RFC3339Nano))
	if v.Topic != "" {
		fmt.Fprintf(env.stdout, "topic   %s\n", v.Topic)
	}
	if v.Key != "" {
		fmt.Fprintf(env.stdout, "key     %s\n", v.Key)
	}
	if v.Value != nil {
		var out bytes.Buffer
		if json.Indent(&out, v.Value, "", "  ") == nil {
			body = out.String()
		}
	}
	fmt.Fprintf(env.stdout, "value   %s\n", body)
}

func compactJSON(b json.RawMessage) string {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return string(b)
	}
	return out.String()
}
