#!/usr/bin/env bash
# Installs what the test suite needs when it is missing. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-deps: need ${need_apt[*]} (run as root or install them)" >&2
    exit 1
  fi
  echo "ensure-deps: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Further steps (TinyGo) are added by scripts/ensure-*.sh files.
for s in "$here"/ensure-*.sh; do
  [ "$s" = "$here/ensure-deps.sh" ] && continue
  [ -f "$s" ] && bash "$s"
done
exit 0
