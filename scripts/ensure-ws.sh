#!/usr/bin/env bash
# Installs the WebSocket test peers (npm ws and wscat) into a cache
# directory that the connectors/ws tests find through AIMDB_NODE_WS
# (default below). Idempotent: nothing is fetched when they are there.
set -euo pipefail
dir=${AIMDB_NODE_WS:-${XDG_CACHE_HOME:-$HOME/.cache}/aimdb-flow/node-ws}
if [ -f "$dir/node_modules/ws/package.json" ] && [ -x "$dir/node_modules/.bin/wscat" ]; then
  exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-ws: need node and npm (run as root or install them)" >&2
    exit 1
  fi
  echo "ensure-ws: installing nodejs and npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi
echo "ensure-ws: installing npm ws@8.23.1 and wscat@6.1.0 into $dir"
mkdir -p "$dir"
npm install --silent --no-audit --no-fund --prefix "$dir" ws@8.23.1 wscat@6.1.0 >/dev/null
