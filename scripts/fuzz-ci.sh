#!/usr/bin/env bash
# fuzz-ci.sh: run every fuzz target of the repository for a bounded time.
#
#   scripts/fuzz-ci.sh                 # FUZZTIME per target (default 10s), total bounded by FUZZ_BUDGET
#   FUZZTIME=1m scripts/fuzz-ci.sh     # longer local run
#   scripts/fuzz-ci.sh FuzzParse       # only targets whose name matches the regexp
#
# Targets are found with `grep -rn "func Fuzz" --include=*_test.go`; each
# runs alone (`go test -run XXX -fuzz ^Name$ -fuzztime T ./pkg`). The time
# per target is lowered so that the whole run, builds included, stays
# within FUZZ_BUDGET seconds (default 170). Crashers
# are written by go test to the package's testdata/fuzz/<Name>/ (commit them
# with the fix: they become regression cases of the plain `go test` run).
# Exit status: non-zero if any target failed.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-10s}"
FUZZ_BUDGET="${FUZZ_BUDGET:-170}"
FILTER="${1:-.}"
GO="${GO:-go}"

# package dir <TAB> target name, sorted, filtered.
mapfile -t targets < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . \
  | grep -v '/vendor/' \
  | sed -E 's#^\./(.*)/[^/]+_test\.go:[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*#\1\t\2#' \
  | sort -u | awk -F'\t' -v f="$FILTER" '$2 ~ f')

n=${#targets[@]}
if [ "$n" -eq 0 ]; then
  echo "fuzz-ci: no fuzz targets match '$FILTER'"
  exit 0
fi

# Seconds per target: FUZZTIME, lowered so that the whole run (fuzzing
# plus building and starting each target, measured as it goes) fits in
# FUZZ_BUDGET seconds; never below 2s.
want=$(echo "$FUZZTIME" | awk '/m$/{sub(/m$/,"");print $0*60;next} {sub(/s$/,"");print}')
echo "fuzz-ci: $n targets, up to ${want}s each, ${FUZZ_BUDGET}s budget"
failed=()
start=$(date +%s)
overhead=8 # first guess of build+startup seconds per target
i=0
log=$(mktemp)
for t in "${targets[@]}"; do
  dir=${t%%$'\t'*}
  name=${t##*$'\t'}
  now=$(date +%s)
  left=$(( n - i ))
  secs=$(( (FUZZ_BUDGET - (now - start)) / left - overhead ))
  if [ "$secs" -gt "$want" ]; then secs=$want; fi
  if [ "$secs" -lt 2 ]; then secs=2; fi
  printf 'fuzz-ci: %-38s %3ss ./%s\n' "$name" "$secs" "$dir"
  t0=$(date +%s)
  if ! $GO test -run XXX_NO_TESTS -fuzz "^${name}\$" -fuzztime "${secs}s" "./$dir" > "$log" 2>&1; then
    # Go's fuzzing engine sometimes ends a short run with only "context
    # deadline exceeded" (no failing input, nothing written to testdata):
    # the time ran out while stopping its workers on a loaded machine.
    # That run is repeated once; a real failure names its input.
    if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
      echo "fuzz-ci: $name ended with only 'context deadline exceeded' (no failing input): repeating once"
      if $GO test -run XXX_NO_TESTS -fuzz "^${name}\$" -fuzztime "${secs}s" "./$dir" > "$log" 2>&1; then
        continue_ok=1
      else
        continue_ok=0
      fi
    else
      continue_ok=0
    fi
    if [ "$continue_ok" -eq 0 ]; then
      cat "$log"
      failed+=("$dir $name")
    fi
  fi
  took=$(( $(date +%s) - t0 ))
  i=$(( i + 1 ))
  # Running average of the per-target overhead.
  overhead=$(( (overhead * i + (took > secs ? took - secs : 0)) / (i + 1) ))
done
rm -f "$log"
echo "fuzz-ci: done in $(( $(date +%s) - start ))s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz-ci: FAILED:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
