#!/usr/bin/env bash
# Makes sure TinyGo is installed for the device-subset tests (called by
# scripts/ensure-deps.sh from `make test`). Idempotent: returns in well under
# a second when TinyGo is already installed; otherwise runs
# scripts/install-tinygo.sh (~3-5 minutes on a fresh machine).
#
#   TINYGO_ROOT=/opt/tinygo    where TinyGo lives (default /opt/tinygo)
#   AIMDB_SKIP_TINYGO=1        skip (make tinygo-test then skips too)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [[ "${AIMDB_SKIP_TINYGO:-}" == 1 ]]; then
  echo "ensure-tinygo: skipped (AIMDB_SKIP_TINYGO=1)"; exit 0
fi
export PREFIX=${TINYGO_ROOT:-/opt/tinygo}
if [[ "$(id -u)" -ne 0 ]] && ! command -v sudo >/dev/null && [[ ! -x "$PREFIX/bin/tinygo" ]]; then
  echo "ensure-tinygo: TinyGo missing and not root: run 'sudo bash scripts/install-tinygo.sh'" >&2
  exit 1
fi
exec bash "$here/install-tinygo.sh"
