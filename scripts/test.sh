#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs the Swift tests, then the integration tests
# (real mosquitto, real libmodbus, pymodbus devices over TCP and over socat pty pairs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

swift build --build-tests 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\]' || true
swift build 2>&1 | tail -1
swift test --skip-build

export PANTAU_BIN="$PWD/.build/debug/pantau"
.venv/bin/python -m pytest Tests/integration -q -p no:cacheprovider "$@"
