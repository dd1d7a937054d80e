#!/usr/bin/env bash
# Builds the runtime-floor programs into bench/out/floor/ (issue 17):
#   floor-static      Swift runtime and FoundationEssentials linked statically (as scripts/build-deb.sh builds pantau)
#   floor-dynamic     the same, Swift runtime shared
#   floor-static-c    static, and linked to libmodbus, libmosquitto, libsqlite3 and libyaml as pantau is
#   floor-packages    static, the four C libraries and every Swift package pantau depends on (argument-parser,
#                     swift-log, service-lifecycle, swift-crypto, swift-protobuf without traits), each touched once
#                     (bench/floor/packages, a SwiftPM package built as pantau is: -c release --static-swift-stdlib)
# Then, measured as `footprint.py memory` measures pantau (median VmRSS over a window, smaps breakdown):
#   bench/footprint.py floor -- bench/out/floor/floor-static-c 0 60
#   bench/footprint.py floor -- bench/out/floor/floor-packages --threads 0 --seconds 60
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out/floor
swiftc -O -static-stdlib floor/main.swift -o out/floor/floor-static
swiftc -O floor/main.swift -o out/floor/floor-dynamic
swiftc -O -static-stdlib -D WITH_C_LIBRARIES -import-objc-header floor/bridge.h floor/main.swift \
    -lmodbus -lmosquitto -lsqlite3 -lyaml -o out/floor/floor-static-c
swift build --package-path floor/packages -c release --static-swift-stdlib
cp "$(swift build --package-path floor/packages -c release --static-swift-stdlib --show-bin-path)/floor-packages" \
    out/floor/floor-packages
ls -l out/floor
