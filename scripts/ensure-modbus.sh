#!/bin/sh
# Test peers of the modbus connector (connectors/modbus): Debian's pymodbus
# 3.0.0 server (TCP and RTU), mbpoll 1.4.11 (a Modbus client for the
# server mode) and socat (a pty pair for RTU). Idempotent; quick when
# everything is installed.
set -eu
missing=""
/usr/bin/python3 -c "import pymodbus" 2>/dev/null || missing="$missing python3-pymodbus"
/usr/bin/python3 -c "import serial" 2>/dev/null || missing="$missing python3-serial"
command -v mbpoll >/dev/null 2>&1 || missing="$missing mbpoll"
command -v socat >/dev/null 2>&1 || missing="$missing socat"
[ -z "$missing" ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq $missing >/dev/null
