// Command aimdb-flow runs, checks, formats, draws and tests .flow pipeline
// files.
//
//	aimdb-flow run pipelines/demo.flow
//	aimdb-flow validate pipelines/*.flow
//	aimdb-flow fmt -w pipelines/demo.flow
//	aimdb-flow graph --format mermaid pipelines/demo.flow
//	aimdb-flow records watch --connect 127.0.0.1:8080 'sensor.*'
//	aimdb-flow test pipelines/
//	aimdb-flow build --target cortex-m-qemu --driver ./examples/device/replay pipelines/device.flow
//
// Exit codes: 0 success; 1 problems found (invalid file, failed test,
// unformatted file with -l, run error); 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// Exit codes.
const (
	exitOK       = 0
	exitProblems = 1
	exitUsage    = 2
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

type command struct {
	name, args, short, long string
	run                     func(ctx context.Context, env *cliEnv, args []string) int
}

// cliEnv is what a command needs from the process, so tests can run
// commands in-process.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
	// isTTY reports whether stderr is a terminal (for the live status).
	isTTY bool
	// stdoutOnTTY reports whether stdout is that same terminal: a stdout
	// sink would then interleave with the status line.
	stdoutOnTTY bool
	// codecs, when set, replaces the built-in codec registry (tests plug
	// in codecs of their own).
	codecs codec.Registry
}

var commands []*command

func init() {
	commands = []*command{
		{name: "run", args: "[flags] FILE...", short: "run pipeline files until interrupted (or until finite sources end)", long: runHelp, run: cmdRun},
		{name: "validate", args: "FILE...", short: "check files and report every problem", long: validateHelp, run: cmdValidate},
		{name: "fmt", args: "[-w | -l] FILE...", short: "print files in canonical form", long: fmtHelp, run: cmdFmt},
		{name: "graph", args: "[--format dot|mermaid] FILE... | --connect URL [--json]", short: "draw the pipeline graph (of files, or of a running instance)", long: graphHelp, run: cmdGraph},
		{name: "mcp", args: "--connect URL [--token TOKEN] [--allow-set]", short: "serve the Model Context Protocol (stdio) for a running instance", long: mcpHelp, run: cmdMCP},
		{name: "records", args: "ls|get|watch|set [--connect URL] [--token TOKEN] [--json] [ARGS]", short: "list, read, watch and set the records of a running instance", long: recordsHelp, run: cmdRecords},
		{name: "test", args: "[-v] [DIR|FILE...]", short: "run pipeline tests (*.test.json)", long: testHelp, run: cmdTest},
		{name: "build", args: "--target cortex-m-qemu|wasip1|host [-o OUT] [--emit DIR] [--driver PKG] FILE...", short: "check a file against the device subset and build it for a device with TinyGo", long: buildHelp, run: cmdBuild},
		{name: "bench", args: "[--records N] [--rate R] [--json] FILE...", short: "drive pipeline files with generated records; report throughput and latency per stage", long: benchHelp, run: cmdBench},
		{name: "version", short: "print the version", run: cmdVersion},
	}
}

func main() {
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.LookupEnv, isTTY: isTerminal(os.Stderr),
		stdoutOnTTY: sameTerminal(os.Stdout, os.Stderr)}
	os.Exit(dispatch(context.Background(), env, os.Args[1:]))
}

func dispatch(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		usage(env.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help", "help":
		if len(args) > 1 {
			for _, c := range commands {
				if c.name == args[1] {
					commandUsage(env.stdout, c, nil)
					return exitOK
				}
			}
		}
		usage(env.stdout)
		return exitOK
	case "--version", "-version":
		name = "version"
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, env, args[1:])
		}
	}
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	fmt.Fprintf(env.stderr, "aimdb-flow: unknown command %q%s; 'aimdb-flow help' lists the commands\n", name, pipeline.DidYouMean(name, names))
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "aimdb-flow: stream-processing pipelines between devices, edge and cloud.\n\nUsage:\n  aimdb-flow COMMAND [ARGS]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\nRun 'aimdb-flow COMMAND --help' for a command's flags.\n"+
		"Exit codes: 0 success, 1 problems found (invalid file, failed test, run error), 2 usage error.\n")
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: aimdb-flow %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.short))
	if c.long != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.long))
	}
	if fs != nil {
		has := false
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			fmt.Fprintf(w, "\nFlags:\n")
			fs.SetOutput(w)
			fs.PrintDefaults()
		}
	}
}

// newFlags builds a command's flag set; parse returns false (and the exit
// code) on -h or a usage error.
func newFlags(env *cliEnv, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseFlags(env *cliEnv, fs *flag.FlagSet, args []string) (int, bool) {
	var c *command
	for _, x := range commands {
		if x.name == fs.Name() {
			c = x
		}
	}
	// Accept flags after file names too (aimdb-flow graph f.flow --format dot).
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") {
				if f := fs.Lookup(name); f != nil {
					if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !bf.IsBoolFlag() {
						if i+1 < len(args) {
							flags = append(flags, args[i+1])
							i++
						}
					}
				}
			}
			continue
		}
		rest = append(rest, a)
	}
	if err := fs.Parse(append(flags, rest...)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandUsage(env.stdout, c, fs)
			return exitOK, false
		}
		fmt.Fprintf(env.stderr, "aimdb-flow %s: %v%s; 'aimdb-flow %s --help' lists the flags\n", fs.Name(), err, flagSuggestion(fs, err), fs.Name())
		return exitUsage, false
	}
	return 0, true
}

// flagSuggestion proposes the closest defined flag for an undefined one.
func flagSuggestion(fs *flag.FlagSet, err error) string {
	const prefix = "flag provided but not defined: -"
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return ""
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	s := pipeline.DidYouMean(strings.TrimPrefix(msg, prefix), names)
	if s == "" {
		return ""
	}
	// " (did you mean "http"?)" -> " (did you mean --http?)"
	name := strings.TrimSuffix(strings.TrimPrefix(s, ` (did you mean "`), `"?)`)
	return " (did you mean --" + name + "?)"
}

func needFiles(env *cliEnv, fs *flag.FlagSet) (int, bool) {
	if fs.NArg() == 0 {
		fmt.Fprintf(env.stderr, "aimdb-flow %s: no files given\n\n", fs.Name())
		for _, c := range commands {
			if c.name == fs.Name() {
				commandUsage(env.stderr, c, fs)
			}
		}
		return exitUsage, false
	}
	return 0, true
}

func cmdVersion(_ context.Context, env *cliEnv, args []string) int {
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok {
			if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v += " " + s.Value[:12]
				}
			}
		}
	}
	fmt.Fprintf(env.stdout, "aimdb-flow %s\n", v)
	return exitOK
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// sameTerminal reports whether a and b are the same terminal device.
func sameTerminal(a, b *os.File) bool {
	sa, err := a.Stat()
	if err != nil || sa.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	sb, err := b.Stat()
	return err == nil && os.SameFile(sa, sb)
}
