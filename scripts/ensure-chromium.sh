#!/usr/bin/env bash
# Installs Debian's headless Chromium (chromium-headless-shell) for the
# dashboard's page tests (tests/chromium). Idempotent.
set -euo pipefail
if command -v chromium-headless-shell >/dev/null 2>&1 || command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-chromium: need chromium-headless-shell (run as root or install it)" >&2
  exit 1
fi
echo "ensure-chromium: installing chromium-headless-shell"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium-headless-shell >/dev/null
