package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/dsl/devgen"
)

const buildHelp = `
Builds a .flow file for a device with TinyGo. The file is validated as
'validate' does, then checked against the device subset (every construct
outside it is reported with its position and the reason: CEL, windows,
batch, Kafka/HTTP/file connectors, queue or unbounded buffers, expressions
device/expr does not accept, templated destinations, ...). A small Go
program on device/flow, device/mqtt and device/frame is generated from the
graph and built with tinygo (scripts/ensure-tinygo.sh installs it; PATH or
/opt/tinygo/bin). ${ENV} is resolved now, at build time.

Targets: cortex-m-qemu (a Cortex-M3 under qemu-system-arm: MQTT on UART1,
console or serial frames on UART0), wasip1, host (MQTT on stdin/stdout).

A from "sensor://NAME" source reads the --driver package (a Go import path
or ./dir): it exports func Open() (flow.Sensors, error) (see
device/flow.Sensors). On the server, sensor:// is simulated by the gen
connector. See docs/device.md.

  aimdb-flow build --target cortex-m-qemu --driver ./examples/device/replay pipelines/device.flow
  aimdb-flow build --target host --emit ./device-src --no-build pipelines/device.flow`

func cmdBuild(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "build")
	target := fs.String("target", "", "cortex-m-qemu, wasip1 or host (required)")
	out := fs.String("o", "", "output file (default: the file's name, .elf for cortex-m-qemu, .wasm for wasip1)")
	emit := fs.String("emit", "", "write the generated module (main.go, go.mod) to this directory and keep it")
	driver := fs.String("driver", "", "the sensor driver package for sensor:// sources (import path or ./dir)")
	size := fs.String("size", "", "print the build's size: short or full (tinygo -size)")
	noBuild := fs.Bool("no-build", false, "check and generate only (with --emit, to keep the code)")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if code, ok := needFiles(env, fs); !ok {
		return code
	}
	known := false
	for _, t := range devgen.Targets {
		known = known || t == *target
	}
	if !known {
		if *target == "" {
			fmt.Fprintf(env.stderr, "aimdb-flow build: --target is required (%s)\n", strings.Join(devgen.Targets, ", "))
		} else {
			fmt.Fprintf(env.stderr, "aimdb-flow build: unknown target %q (want %s)\n", *target, strings.Join(devgen.Targets, ", "))
		}
		return exitUsage
	}
	if *size != "" && *size != "short" && *size != "full" {
		fmt.Fprintf(env.stderr, "aimdb-flow build: --size %q: want short or full\n", *size)
		return exitUsage
	}
	files := fs.Args()
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := dsl.LoadFiles(loadOpts(env, log), files...); err != nil {
		printLoadError(env, err)
		return exitProblems
	}
	parsed := make([]*dsl.File, 0, len(files))
	errs := &dsl.ErrorList{}
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(env.stderr, "aimdb-flow: %v\n", err)
			return exitProblems
		}
		parsed = append(parsed, dsl.Parse(path, src, errs))
	}
	dev, err := devgen.Check(devgen.Options{Getenv: env.getenv, Errors: errs}, parsed...)
	if err != nil {
		printLoadError(env, err)
		fmt.Fprintf(env.stderr, "aimdb-flow build: %s is outside the device subset (see docs/device.md)\n", strings.Join(files, ", "))
		return exitProblems
	}
	flowDir, err := goList(ctx, "", "-m", "-f", "{{.Dir}}", devgen.FlowModule)
	if err != nil {
		fmt.Fprintf(env.stderr, "aimdb-flow build: cannot find the %s module (run aimdb-flow build inside its checkout or a module that requires it): %v\n", devgen.FlowModule, err)
		return exitProblems
	}
	mopts := devgen.ModuleOptions{FlowDir: flowDir, Replace: map[string]string{}}
	var drvPath string
	if *driver != "" {
		// ImportPath, module path and module directory of the driver.
		info, err := goList(ctx, "", "-f", "{{.ImportPath}}\t{{.Name}}\t{{with .Module}}{{.Path}}\t{{.Dir}}{{end}}", *driver)
		if err != nil {
			fmt.Fprintf(env.stderr, "aimdb-flow build: --driver %s: %v\n", *driver, err)
			return exitProblems
		}
		f := strings.Split(info, "\t")
		if len(f) != 4 {
			fmt.Fprintf(env.stderr, "aimdb-flow build: --driver %s: not a package in a module (go list says %q)\n", *driver, info)
			return exitProblems
		}
		if f[1] == "main" {
			fmt.Fprintf(env.stderr, "aimdb-flow build: --driver %s: a driver is a library package (with func Open() (flow.Sensors, error)), not package main\n", *driver)
			return exitProblems
		}
		drvPath = f[0]
		if f[2] != devgen.FlowModule {
			mopts.Replace[f[2]] = f[3]
		}
	}
	mainGo, err := devgen.Generate(dev, devgen.GenOptions{Target: *target, Driver: drvPath})
	if err != nil {
		fmt.Fprintf(env.stderr, "aimdb-flow build: %v\n", err)
		return exitProblems
	}
	name := strings.TrimSuffix(filepath.Base(files[0]), ".flow")
	dir := *emit
	if dir == "" {
		if *noBuild {
			fmt.Fprintf(env.stdout, "%s: inside the device subset (target %s)\n", strings.Join(files, ", "), *target)
			return exitOK
		}
		tmp, err := os.MkdirTemp("", "aimdb-flow-build-")
		if err != nil {
			fmt.Fprintf(env.stderr, "aimdb-flow build: %v\n", err)
			return exitProblems
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if err := devgen.WriteModule(dir, name, mainGo, mopts); err != nil {
		fmt.Fprintf(env.stderr, "aimdb-flow build: %v\n", err)
		return exitProblems
	}
	if *emit != "" {
		fmt.Fprintf(env.stdout, "wrote %s (main.go, go.mod)\n", *emit)
	}
	if *noBuild {
		return exitOK
	}
	if *out == "" {
		*out = name + map[string]string{"cortex-m-qemu": ".elf", "wasip1": ".wasm", "host": ""}[*target]
	}
	abs, err := filepath.Abs(*out)
	if err != nil {
		fmt.Fprintf(env.stderr, "aimdb-flow build: %v\n", err)
		return exitProblems
	}
	if err := tinygoBuild(ctx, env, dir, *target, abs, *size); err != nil {
		fmt.Fprintf(env.stderr, "aimdb-flow build: %v\n", err)
		return exitProblems
	}
	fmt.Fprintf(env.stdout, "built %s (target %s) from %s\n", *out, *target, strings.Join(files, ", "))
	return exitOK
}

// tinygoBuild runs tinygo build in the generated module's directory.
func tinygoBuild(ctx context.Context, env *cliEnv, dir, target, out, size string) error {
	tinygo, err := exec.LookPath("tinygo")
	if err != nil {
		tinygo = "/opt/tinygo/bin/tinygo"
		if _, err := os.Stat(tinygo); err != nil {
			return errors.New("tinygo not found: install it with scripts/ensure-tinygo.sh (it lives in /opt/tinygo/bin), or keep the generated code with --emit DIR --no-build")
		}
	}
	args := []string{"build", "-o", out}
	switch target {
	case "host":
		args = append(args, "-gc=precise") // the default GC needs sources TinyGo's install lacks here
	default:
		args = append(args, "-target="+target)
	}
	if size != "" {
		args = append(args, "-size", size)
	}
	cmd := exec.CommandContext(ctx, tinygo, append(args, ".")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	cmd.Stdout, cmd.Stderr = env.stdout, env.stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("tinygo build: %w", err)
	}
	return nil
}

// goList runs go list with args in dir and returns its trimmed output.
func goList(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"list"}, args...)...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return "", err
		}
		return "", fmt.Errorf("%w: %s", err, msg)
	}
	return strings.TrimSpace(string(b)), nil
}
