#!/usr/bin/env bash
# Builds the runtime-floor programs into bench/out/floor/ (issue 17):
#   floor-static      Swift runtime and FoundationEssentials linked statically (as scripts/build-deb.sh builds pantau)
#   floor-dynamic     the same, Swift runtime shared
#   floor-static-c    static, and linked to libmodbus, libmosquitto, libsqlite3 and libyaml as pantau is
# Then: bench/footprint.py floor bench/out/floor/floor-static-c 0 5
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out/floor
swiftc -O -static-stdlib floor/main.swift -o out/floor/floor-static
swiftc -O floor/main.swift -o out/floor/floor-dynamic
swiftc -O -static-stdlib -D WITH_C_LIBRARIES -import-objc-header floor/bridge.h floor/main.swift \
    -lmodbus -lmosquitto -lsqlite3 -lyaml -o out/floor/floor-static-c
ls -l out/floor
