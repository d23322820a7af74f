#!/usr/bin/env bash
# Makes sure knxd and knxtool (Debian's knxd 0.14, packages knxd and
# knxd-tools) are installed for the KNX connector tests (called by
# scripts/ensure-deps.sh). Idempotent and fast when installed. The
# package's system-wide knxd service and socket are stopped and disabled:
# the tests start their own knxd on loopback.
set -euo pipefail
# disable_service stops and disables the package's knxd service and socket
# where systemd runs (quick when they are already off).
disable_service() {
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    for u in knxd.service knxd.socket; do
      if systemctl is-enabled --quiet "$u" 2>/dev/null || systemctl is-active --quiet "$u" 2>/dev/null; then
        systemctl disable --now "$u" >/dev/null 2>&1 || true
      fi
    done
  fi
}
# The tests run knxd in a private network namespace: they need `ip`
# (iproute2, not in minimal images) besides knxd and knxtool.
if command -v knxd >/dev/null 2>&1 && command -v knxtool >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
  disable_service
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-knx: need knxd and knxd-tools (run as root or install them)" >&2
  exit 1
fi
echo "ensure-knx: installing knxd knxd-tools iproute2"
export DEBIAN_FRONTEND=noninteractive
# No service may start during the install (policy-rc.d 101 = action not
# allowed), restored afterwards.
policy=/usr/sbin/policy-rc.d
had_policy=0
if [ -e "$policy" ]; then had_policy=1; cp "$policy" "$policy.knx-save"; fi
printf '#!/bin/sh\nexit 101\n' > "$policy"
chmod +x "$policy"
restore() {
  if [ "$had_policy" = 1 ]; then mv "$policy.knx-save" "$policy"; else rm -f "$policy"; fi
}
trap restore EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends knxd knxd-tools iproute2 >/dev/null
disable_service
# Without systemd nothing was started; make sure no daemon of the package
# runs anyway (pidfile of the Debian init script, if any).
if [ -f /run/knxd.pid ]; then kill "$(cat /run/knxd.pid)" 2>/dev/null || true; fi
exit 0
