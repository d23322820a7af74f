package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/dsl/flowtest"
)

const validateHelp = `
Parses, checks and validates each file (connectors built, link settings
checked by each connector, expressions compiled) without connecting to
anything. Every problem is reported as file:line:col with the source line
and a caret. With --together the files are validated as the one graph
'run' would build from them. Exit 1 when there is any problem.`

const fmtHelp = `
Prints each file in canonical form (comments kept). With -w the files are
rewritten in place; with -l only the names of files whose formatting
differs are printed (exit 1 if any). Formatting is idempotent.`

const graphHelp = `
Prints the graph of records, pipelines (with their stages) and links in
Graphviz dot (default) or Mermaid.

With --connect URL (or AIMDB_FLOW_CONNECT) it shows the graph of a running
instance (aimdb-flow run --http) instead, with its live counters:
connectors and their readiness, records, pipelines with per-stage counts
(and timings with run --hop-latency) and links; --json prints it as the
API returns it.

  aimdb-flow graph pipelines/demo.flow | dot -Tsvg > demo.svg`

const testHelp = `
Runs pipeline tests. A test file (NAME.test.json) names a .flow file, gives
input messages per source link and expects output messages per sink link
and dead letters. Connectors are replaced by in-process ones, so tests need
no broker. Directories are searched recursively; no argument means ".".
Exit 1 if any test fails. See docs/cli.md for the file format.`

// loadOpts returns dsl options for the process.
func loadOpts(env *cliEnv, log *slog.Logger) dsl.Options {
	return dsl.Options{Getenv: env.getenv, Logger: log, Codecs: env.codecs}
}

// printLoadError prints problems with carets; it reports whether err was a
// list of problems.
func printLoadError(env *cliEnv, err error) {
	var el *dsl.ErrorList
	if errors.As(err, &el) {
		fmt.Fprint(env.stderr, el.Pretty())
		fmt.Fprintf(env.stderr, "%d problem(s)\n", el.Len())
		return
	}
	fmt.Fprintf(env.stderr, "aimdb-flow: %v\n", err)
}

func cmdValidate(_ context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "validate")
	together := fs.Bool("together", false, "validate the files as one graph, as run does")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if code, ok := needFiles(env, fs); !ok {
		return code
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	groups := [][]string{fs.Args()}
	if !*together {
		groups = groups[:0]
		for _, f := range fs.Args() {
			groups = append(groups, []string{f})
		}
	}
	code := exitOK
	for _, files := range groups {
		if _, err := dsl.LoadFiles(loadOpts(env, log), files...); err != nil {
			printLoadError(env, err)
			code = exitProblems
			continue
		}
		for _, f := range files {
			fmt.Fprintf(env.stdout, "%s: ok\n", f)
		}
	}
	if code != exitOK && !*together && fs.NArg() > 1 {
		// run loads its files as one graph: say so when that is why
		// they failed one by one.
		if _, err := dsl.LoadFiles(loadOpts(env, slog.New(slog.DiscardHandler)), fs.Args()...); err == nil {
			fmt.Fprintf(env.stderr, "aimdb-flow validate: the files are valid together, as 'run' loads them (one file uses what another declares): aimdb-flow validate --together %s\n", strings.Join(fs.Args(), " "))
		}
	}
	return code
}

func cmdFmt(_ context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "fmt")
	write := fs.Bool("w", false, "write the result to the file instead of stdout")
	list := fs.Bool("l", false, "list files whose formatting differs")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if code, ok := needFiles(env, fs); !ok {
		return code
	}
	code := exitOK
	for _, path := range fs.Args() {
		src, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(env.stderr, "aimdb-flow: %v\n", err)
			code = exitProblems
			continue
		}
		errs := &dsl.ErrorList{}
		f := dsl.Parse(path, src, errs)
		if errs.Len() > 0 {
			// Never rewrite a file that does not parse.
			errs.Err()
			fmt.Fprint(env.stderr, errs.Pretty())
			code = exitProblems
			continue
		}
		// Nor one that does not validate: formatting an invalid file would
		// hide its problems behind a clean diff.
		fo := loadOpts(env, slog.New(slog.DiscardHandler))
		fo.NoLinkChecks = true // fmt reads the file; it does not run it
		if _, err := dsl.LoadFiles(fo, path); err != nil {
			printLoadError(env, err)
			fmt.Fprintf(env.stderr, "aimdb-flow fmt: %s left as it is: fmt formats only valid files (see aimdb-flow validate)\n", path)
			code = exitProblems
			continue
		}
		out := dsl.Format(f)
		switch {
		case *list:
			if !bytes.Equal(out, src) {
				fmt.Fprintln(env.stdout, path)
				code = exitProblems
			}
		case *write:
			if !bytes.Equal(out, src) {
				st, err := os.Stat(path)
				if err == nil {
					err = os.WriteFile(path, out, st.Mode().Perm())
				}
				if err != nil {
					fmt.Fprintf(env.stderr, "aimdb-flow: %v\n", err)
					code = exitProblems
				}
			}
		default:
			env.stdout.Write(out)
		}
	}
	return code
}

func cmdGraph(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "graph")
	format := fs.String("format", "dot", "output format: dot or mermaid")
	rf := addRemoteFlags(fs, true)
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if rf.remote(env) {
		if fs.NArg() > 0 {
			fmt.Fprintf(env.stderr, "aimdb-flow graph: --connect draws a running instance: give no files\n")
			return exitUsage
		}
		return remoteGraph(ctx, env, rf)
	}
	if code, ok := needFiles(env, fs); !ok {
		return code
	}
	if *format != "dot" && *format != "mermaid" {
		fmt.Fprintf(env.stderr, "aimdb-flow graph: unknown format %q (want dot or mermaid)\n", *format)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	gopts := loadOpts(env, log)
	gopts.NoLinkChecks = true // graph draws the files; it does not run them
	gopts.Placeholders = true // unset ${NAME} is drawn as written
	g, err := dsl.LoadFiles(gopts, fs.Args()...)
	if err != nil {
		printLoadError(env, err)
		return exitProblems
	}
	out, err := dsl.Render(g, *format)
	if err != nil {
		fmt.Fprintf(env.stderr, "aimdb-flow: %v\n", err)
		return exitProblems
	}
	fmt.Fprint(env.stdout, out)
	return exitOK
}

func cmdTest(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "test")
	verbose := fs.Bool("v", false, "print every case and the pipeline's logs")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	files, err := flowtest.Find(fs.Args()...)
	if err != nil {
		fmt.Fprintf(env.stderr, "aimdb-flow test: %v\n", err)
		return exitProblems
	}
	if len(files) == 0 {
		fmt.Fprintf(env.stderr, "aimdb-flow test: no *.test.json files found\n")
		return exitProblems
	}
	level := slog.LevelError + 1
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: level}))
	pass, fail := 0, 0
	for _, path := range files {
		s, err := flowtest.LoadSuite(path)
		if err != nil {
			fmt.Fprintf(env.stdout, "FAIL %s\n    %v\n", path, err)
			fail++
			continue
		}
		for _, r := range s.Run(ctx, log) {
			if r.Passed() {
				pass++
				if *verbose {
					fmt.Fprintf(env.stdout, "PASS %s: %s (%s)\n", r.Suite, r.Case, r.Duration.Round(1e6))
				}
				continue
			}
			fail++
			fmt.Fprintf(env.stdout, "FAIL %s: %s\n", r.Suite, r.Case)
			for _, f := range r.Failures {
				fmt.Fprintf(env.stdout, "    %s\n", f)
			}
		}
	}
	if fail > 0 {
		fmt.Fprintf(env.stdout, "FAIL: %d of %d test cases failed\n", fail, pass+fail)
		return exitProblems
	}
	fmt.Fprintf(env.stdout, "ok: %d test cases in %d files\n", pass, len(files))
	return exitOK
}
