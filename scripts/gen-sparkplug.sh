#!/bin/sh
# Regenerates Sources/PantauSparkplug/sparkplug_b.pb.swift from sparkplug_b.proto. Run by hand after editing the
# .proto; never in CI (the generated file is committed). Needs Debian's protoc (apt: protobuf-compiler) and the
# swift-protobuf plugin built from the release the package depends on:
#   git clone --branch 1.39.0 https://github.com/apple/swift-protobuf && cd swift-protobuf \
#     && swift build -c release --product protoc-gen-swift
set -eu
cd "$(dirname "$0")/.."
PLUGIN=${PROTOC_GEN_SWIFT:-/work/tools/swift-protobuf/.build/release/protoc-gen-swift}
protoc --plugin=protoc-gen-swift="$PLUGIN" --proto_path=Sources/PantauSparkplug \
    --swift_out=Sources/PantauSparkplug --swift_opt=Visibility=Internal sparkplug_b.proto
