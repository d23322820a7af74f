#!/usr/bin/env bash
# Runs the device subset's tests under TinyGo (`make tinygo-test`):
#   host      tinygo test -gc=precise           (linux/amd64)
#   wasip1    tinygo test -target=wasip1-node   (wasip1 run by node >= 20; target added by install-tinygo.sh)
#   cortex-m  tinygo test -target=cortex-m-qemu (Cortex-M3, run under qemu-system-arm)
# then builds the cortex-m examples, prints their flash/RAM use and runs
# them under qemu (the MQTT one against mosquitto), and builds
# pipelines/device.flow with `aimdb-flow build` for cortex-m-qemu (run
# under qemu, MQTT to mosquitto) and host (MQTT over stdin/stdout to
# mosquitto), comparing each run's alerts with the server runtime's.
#
#   TINYGO_TARGETS="host wasip1 cortex-m-qemu"   subset to run
#   AIMDB_SKIP_TINYGO=1                           skip entirely
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${AIMDB_SKIP_TINYGO:-}" == 1 ]]; then
  echo "tinygo-test: skipped (AIMDB_SKIP_TINYGO=1)"; exit 0
fi
bash scripts/ensure-tinygo.sh >/dev/null
ROOT=${TINYGO_ROOT:-/opt/tinygo}
export PATH="$ROOT/bin:$PATH"
TARGETS=${TINYGO_TARGETS:-host wasip1 cortex-m-qemu}

# The device subset: every package a device pipeline imports.
PKGS=(./device/value ./device/expr ./device/jsonflat ./device/binflat ./device/frame
      ./device/mqtt ./device/internal/alloctest ./pipeline/topic)
# This buffer conformance subtest pushes 20000 values, each through a fresh
# context.WithTimeout: minutes under TinyGo's single-threaded scheduler. It
# runs under `go test -race` instead.
SKIP_BUFFER='TestConformance/.*/values_arrive'

status=0
run() { # label, tinygo args...
  local label=$1; shift
  local t0=$SECONDS ok=1
  echo "== tinygo test ($label)"
  tinygo test "$@" "${PKGS[@]}" || ok=0
  tinygo test "$@" -skip "$SKIP_BUFFER" ./pipeline/buffer || ok=0
  if [[ $label == cortex-m-qemu ]]; then
    # Run mode starts one goroutine (stack) per pipeline: more RAM than the
    # emulated board (64 KB) has with the test runner's own. Poll mode (what
    # a device main loop uses) is tested.
    tinygo test "$@" -skip 'TestRunDrainsAndStopsWhenInputCloses' ./device/flow || ok=0
  else
    tinygo test "$@" ./device/flow || ok=0
  fi
  if ((ok)); then
    echo "== $label: ok ($((SECONDS - t0))s)"
  else
    echo "== $label: FAILED" >&2; status=1
  fi
}
for t in $TARGETS; do
  case $t in
    host)          run host -gc=precise ;;
    wasip1)        run wasip1 -target=wasip1-node ;;
    # The recursive parser/evaluator needs more than the 2 KB default
    # goroutine stack (tests run in goroutines; overflow corrupts memory).
    cortex-m-qemu) run cortex-m-qemu -target=cortex-m-qemu -stack-size=6KB ;;
    *) echo "tinygo-test: unknown target $t" >&2; exit 2 ;;
  esac
done

if [[ " $TARGETS " == *" cortex-m-qemu "* ]]; then
  # Build the example device pipeline for a Cortex-M3, report its size, run
  # it under qemu and check the host decodes its UART output.
  out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
  echo "== cortex-m example (examples/device/sensor)"
  tinygo build -target=cortex-m-qemu -o "$out/sensor.elf" ./examples/device/sensor
  llvm-size-19 "$out/sensor.elf" 2>/dev/null || size "$out/sensor.elf"
  tinygo build -target=cortex-m-qemu -size short -o "$out/sensor2.elf" ./examples/device/sensor
  timeout 120 qemu-system-arm -machine lm3s6965evb -semihosting -nographic -monitor none \
    -kernel "$out/sensor.elf" > "$out/uart.bin" </dev/null || { echo "qemu run failed" >&2; status=1; }
  if ! go run ./examples/device/decode -want-min 1 < "$out/uart.bin" | tail -n 3; then
    echo "== cortex-m example: host could not decode the device's UART output" >&2; status=1
  fi
  # The MQTT example: its size, then the firmware under qemu with its
  # second UART connected to a mosquitto started by the test (skipped when
  # mosquitto is not installed).
  echo "== cortex-m MQTT example (examples/device/mqtt)"
  tinygo build -target=cortex-m-qemu -size short -o "$out/mqtt.elf" ./examples/device/mqtt
  if ! AIMDB_QEMU_E2E=1 go test -count=1 -run TestFirmwareUnderQemu ./examples/device/mqtt; then
    echo "== cortex-m MQTT example: the firmware did not talk to mosquitto under qemu" >&2; status=1
  fi
fi

# One .flow file on the device (pipelines/devicebuild_test.go): one build
# and run per target, each a differential test against the server runtime.
tests=()
[[ " $TARGETS " == *" cortex-m-qemu "* ]] && tests+=(TestDeviceFlowUnderQemu)
[[ " $TARGETS " == *" host "* ]] && tests+=(TestDeviceFlowDifferential)
if ((${#tests[@]})); then
  echo "== aimdb-flow build pipelines/device.flow (${tests[*]})"
  pattern=$(IFS='|'; echo "${tests[*]}")
  log=$(mktemp)
  if AIMDB_QEMU_E2E=1 go test -count=1 -v -run "^($pattern)\$" ./pipelines > "$log" 2>&1; then
    grep -E 'flash|[0-9]+ \| |readings, .* alerts|^(--- |ok)' "$log" || true
  else
    cat "$log"; echo "== aimdb-flow build pipelines/device.flow: FAILED" >&2; status=1
  fi
  rm -f "$log"
fi
exit $status
