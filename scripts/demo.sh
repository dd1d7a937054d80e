#!/usr/bin/env bash
# The demo: a local mosquitto, simulated sensors (air quality, river level, rain gauge) and the gateway, printing
# every MQTT message as it arrives. No hardware needed. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
swift build -c release --product pantau 2>&1 | tail -1
exec .build/release/pantau demo "$@"
