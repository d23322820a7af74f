// Package fuzz holds fuzz targets for the hostile-input paths that have
// none in their own packages (the expression evaluators of stages/expr and
// device/expr, the device frame codec) and one that drives arbitrary
// payloads through a real runner. It is separate from tests/reliability so
// that its fuzzing binary stays small and quick to build:
// scripts/fuzz-ci.sh runs every fuzz target of the repository for a
// bounded time.
package fuzz
