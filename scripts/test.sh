#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs the Swift tests, then the integration tests
# (real mosquitto, real libmodbus, pymodbus devices over TCP and over socat pty pairs, the .deb in a scratch root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

echo "== format lint (swift format, the repository's .swift-format)"
# --strict turns every finding into an error: a line over the width or any other rule fails the suite.
swift format lint --strict --recursive --parallel Package.swift Sources Tests fuzz

echo "== build"
swift build --build-tests 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Wrapping|Write|Linking|Building)' || true
# The grep above only thins the output; this line fails the script if the build did not succeed.
swift build --build-tests >/dev/null

echo "== unit tests (swift test)"
swift test --skip-build

echo "== fuzz (short)"
# Every libFuzzer target in fuzz/Sources for FUZZ_SECONDS each (default 20); fails on any crash.
scripts/fuzz.sh

echo "== integration tests (pytest)"
export PANTAU_BIN="$PWD/.build/debug/pantau"
.venv/bin/python -m pytest Tests/integration -q -p no:cacheprovider "$@"
