package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aimdb-dev/aimdb-flow/bench/flowbench"
)

const benchHelp = `
Drives the pipeline files with generated records and reports, per source,
per pipeline stage and per sink, how many records went through, at what
rate, and with what latency (p50/p99/max of each stage's hop; end to end
from generation to publish at each sink).

Nothing external is touched: every connector is replaced by an in-process
one. Each inbound link produces --records records (a gen:// link keeps its
own template; other links send --template, by default a sensor reading
{"device","temp","seq","ts"}), as fast as the pipelines take them or at
--rate per second. What sinks publish is counted and discarded, except
that a connector publishing to a topic its own inbound links subscribe to
delivers it there, as a broker would. Link settings are still checked by
the real connectors.

  aimdb-flow bench pipelines/w1.flow --records 200000
  aimdb-flow bench pipelines/demo.flow --rate 5000 --json`

func cmdBench(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "bench")
	records := fs.Int("records", 10000, "records generated per inbound link (`N`)")
	rate := fs.Float64("rate", 0, "records per second per inbound link (`R`); 0: as fast as the pipelines take them")
	tmpl := fs.String("template", "", "gen `TEMPLATE` for links other than gen:// (default: a sensor reading)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	timeout := fs.Duration("timeout", 10*time.Minute, "stop the run after this `DURATION`")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if code, ok := needFiles(env, fs); !ok {
		return code
	}
	if *records <= 0 || *rate < 0 {
		fmt.Fprintf(env.stderr, "aimdb-flow bench: --records must be positive and --rate not negative\n")
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := flowbench.Run(ctx, flowbench.Options{Records: *records, Rate: *rate, Template: *tmpl,
		Getenv: env.getenv, Logger: log, Timeout: *timeout}, fs.Args()...)
	if err != nil {
		printLoadError(env, err)
		return exitProblems
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(env.stderr, "aimdb-flow bench: %v\n", err)
			return exitProblems
		}
	} else if err := rep.WriteText(env.stdout); err != nil {
		fmt.Fprintf(env.stderr, "aimdb-flow bench: %v\n", err)
		return exitProblems
	}
	if rep.TimedOut {
		return exitProblems
	}
	return exitOK
}
