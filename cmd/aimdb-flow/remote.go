package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aimdb-dev/aimdb-flow/observability/api"
)

// This file: what the commands talking to a running instance share
// (records, graph --connect): the flags, the client and the tables.

// connectEnv is the environment variable naming the instance when
// --connect is not given.
const connectEnv = "AIMDB_FLOW_CONNECT"

// requestTimeout bounds one request of a remote command (not a watch).
const requestTimeout = 30 * time.Second

type remoteFlags struct {
	connect, token *string
	json           *bool
}

// addRemoteFlags defines --connect and --token, and --json when the
// command prints what the API returns.
func addRemoteFlags(fs *flag.FlagSet, withJSON bool) *remoteFlags {
	rf := &remoteFlags{
		connect: fs.String("connect", "", "`URL` of a running instance's --http address (default $"+connectEnv+")"),
		token:   fs.String("token", "", "the instance's `TOKEN` (default $"+api.TokenEnv+")"),
		json:    new(bool),
	}
	if withJSON {
		rf.json = fs.Bool("json", false, "print JSON as the API returns it")
	}
	return rf
}

// remote reports whether an instance was named (flag or environment).
func (rf *remoteFlags) remote(env *cliEnv) bool {
	if *rf.connect != "" {
		return true
	}
	_, ok := env.getenv(connectEnv)
	return ok
}

func (rf *remoteFlags) client(env *cliEnv) *api.Client {
	c := &api.Client{BaseURL: *rf.connect, Token: *rf.token, HTTP: &http.Client{}}
	if c.BaseURL == "" {
		c.BaseURL, _ = env.getenv(connectEnv)
	}
	if c.Token == "" {
		c.Token, _ = env.getenv(api.TokenEnv)
	}
	return c
}

// remoteError prints err for command name and returns the exit code.
func remoteError(env *cliEnv, name string, err error) int {
	var se *api.StatusError
	if errors.As(err, &se) && se.Status == http.StatusUnauthorized {
		fmt.Fprintf(env.stderr, "aimdb-flow %s: %v; pass --token or set %s\n", name, err, api.TokenEnv)
		return exitProblems
	}
	fmt.Fprintf(env.stderr, "aimdb-flow %s: %v\n", name, err)
	return exitProblems
}

func printJSON(env *cliEnv, v any) {
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func remoteGraph(ctx context.Context, env *cliEnv, rf *remoteFlags) int {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	g, err := rf.client(env).Graph(ctx)
	if err != nil {
		return remoteError(env, "graph", err)
	}
	if *rf.json {
		printJSON(env, g)
		return exitOK
	}
	state := "running"
	if !g.Running {
		state = "not running"
	}
	if g.Ready {
		state += ", ready"
	} else {
		state += ", not ready: " + g.NotReady
	}
	fmt.Fprintf(env.stdout, "graph: %s; unrouted %d, dead letters %d\n\n", state, g.Unrouted, g.DeadLetters)
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTOR\tSCHEME\tREADY\tENDPOINT")
	for _, c := range g.Connectors {
		ready := "yes"
		if !c.Ready {
			ready = "no: " + c.NotReady
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Scheme, ready, dash(c.Endpoint))
	}
	tw.Flush()
	fmt.Fprintln(env.stdout)
	recordTable(env, g.Records)
	fmt.Fprintln(env.stdout)
	tw = tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PIPELINE\tFROM\tTO\tIN\tOUT\tERRORS")
	for _, p := range g.Pipelines {
		to := p.To
		if p.Into != "" {
			to = append([]string{p.Into}, to...)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", p.Name, p.From, strings.Join(to, ", "), p.In, p.Out, p.Errors)
		for _, st := range p.Stages {
			timing := ""
			if st.Timing != nil {
				timing = fmt.Sprintf("  mean %s p99 <= %s", seconds(st.Timing.MeanSeconds), seconds(st.Timing.P99Seconds))
			}
			fmt.Fprintf(tw, "  %s\t\t\t%d\t\t%d%s\n", st.Name, st.In, st.Errors, timing)
		}
	}
	tw.Flush()
	fmt.Fprintln(env.stdout)
	tw = tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINK\tDIR\tOF\tMESSAGES\tERRORS\tDEAD-LETTERED")
	for _, l := range g.Links {
		of := l.Record
		if l.Pipeline != "" {
			of = "pipeline " + l.Pipeline
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", l.Link, l.Direction, of, l.Messages, l.Errors, l.DeadLettered)
	}
	tw.Flush()
	return exitOK
}

// recordTable prints records as a table.
func recordTable(env *cliEnv, recs []api.Record) {
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORD\tBUFFER\tOCCUPANCY\tWRITER\tREADERS\tWRITES\tWRITES/S\tDROPPED\tLAST UPDATE")
	for _, r := range recs {
		buf := r.Buffer.Kind
		if r.Buffer.Capacity > 0 {
			buf = fmt.Sprintf("%s %d", buf, r.Buffer.Capacity)
		}
		occ := fmt.Sprint(r.Buffer.Occupancy)
		if r.Buffer.Capacity > 0 {
			occ = fmt.Sprintf("%d/%d", r.Buffer.Occupancy, r.Buffer.Capacity)
		}
		writer := r.Writer.Kind
		if r.Writer.Name != "" {
			writer += " " + r.Writer.Name
		}
		if r.Settable {
			writer = "settable"
		}
		var readers []string
		for _, rd := range r.Readers {
			readers = append(readers, rd.Name)
		}
		rate := "-"
		if r.Rates != nil {
			rate = fmt.Sprintf("%.1f", r.Rates.Writes)
		}
		last := "-"
		if r.LastUpdate != nil {
			last = r.LastUpdate.Local().Format("15:04:05.000")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", r.Name, buf, occ, writer, dash(strings.Join(readers, ", ")),
			r.Writes, rate, r.Dropped+r.Lagged, last)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func seconds(s float64) string {
	if s == 0 {
		return "?"
	}
	return time.Duration(s * float64(time.Second)).String()
}
