# aimdb-flow — build, test, bench.
#   make test        everything CI runs: installs test deps (mosquitto, TinyGo) when missing, vet, gofmt,
#                    race tests, TinyGo device tests (host, wasip1, cortex-m-qemu), bounded fuzzing
#   make demo        the demo pipeline on embedded defaults (no broker needed)
#   make bench       full benchmark run;  make bench-quick  short version
GO      ?= go
PKGS    ?= ./...
export GOFLAGS ?= -mod=mod

.PHONY: all build test test-go lint vet fmt-check deps demo bench bench-quick fuzz tinygo-test clean

all: build

build:
	$(GO) build ./...

deps:
	bash scripts/ensure-deps.sh

lint: vet fmt-check

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: deps lint test-go tinygo-test fuzz

# Every fuzz target for a bounded time (FUZZ_BUDGET seconds in all).
fuzz:
	FUZZ_BUDGET=$${FUZZ_BUDGET:-200} bash scripts/fuzz-ci.sh

# Device subset under TinyGo: tinygo test on host, wasip1 and cortex-m-qemu, and the example's size.
tinygo-test:
	bash scripts/tinygo-test.sh

test-go:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

demo:
	$(GO) run ./cmd/aimdb-flow run pipelines/demo.flow

# BENCH_AGAINST=REV adds this build's before/after ratio to REV's build
# (W1 CLI, W3 .flow), measured in the same rounds.
BENCH_AGAINST ?=
bench:
	$(GO) run ./bench/cmd/bench $(if $(BENCH_AGAINST),-against $(BENCH_AGAINST))

bench-quick:
	$(GO) run ./bench/cmd/bench -quick

clean:
	rm -rf bench/results/tmp
