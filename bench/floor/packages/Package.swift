// swift-tools-version:6.1
// The runtime floor with Pantau's packages (issue 17): a trivial program that links every Swift package Pantau
// depends on, at the same requirements and traits as ../../../Package.swift, and the four C libraries, and touches
// each once. Built and measured by bench/floor/build.sh; see docs/benchmarks.md section 7.
import PackageDescription

let package = Package(
    name: "floor-packages",
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0", traits: []),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        .systemLibrary(name: "CFloor"),
        .executableTarget(
            name: "floor-packages",
            dependencies: [
                "CFloor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            // Linked as pantau is (../../../Package.swift); without these lines: the toolchain's default link.
            linkerSettings: [
                .unsafeFlags([
                    "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker",
                    "--no-export-dynamic",
                ])
            ]),
    ]
)
