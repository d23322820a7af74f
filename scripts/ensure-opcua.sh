#!/usr/bin/env bash
# Installs the OPC UA test peer (npm node-opcua-server) into a cache
# directory that the connectors/opcua tests find through AIMDB_NODE_OPCUA
# (default below). Idempotent: nothing is fetched when it is there.
set -euo pipefail
dir=${AIMDB_NODE_OPCUA:-${XDG_CACHE_HOME:-$HOME/.cache}/aimdb-flow/node-opcua}
if [ -f "$dir/node_modules/node-opcua-server/package.json" ]; then
  exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-opcua: need node and npm (run as root or install them)" >&2
    exit 1
  fi
  echo "ensure-opcua: installing nodejs and npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi
echo "ensure-opcua: installing npm node-opcua-server@2.186.0 into $dir"
mkdir -p "$dir"
# node-opcua 2.186 declares node >= 22 but runs the tests on node 20.
npm install --silent --no-audit --no-fund --prefix "$dir" node-opcua-server@2.186.0 >/dev/null 2>&1
