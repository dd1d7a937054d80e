// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "pantau",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pantau", targets: ["pantau"]),
        // For the libFuzzer package in fuzz/ (a separate package that depends on this one by path).
        .library(name: "PantauCore", targets: ["PantauCore", "PantauYAML", "PantauPlatform"]),
        .library(name: "PantauModbus", targets: ["PantauModbus"]),
        .library(name: "PantauSparkplug", targets: ["PantauSparkplug"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        // No traits: the default BinaryDelimitedStreams imports the whole of Foundation, which links ICU (issue 17).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0", traits: []),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // C libraries from Debian, each behind one thin Swift wrapper module.
        .systemLibrary(name: "CModbus", pkgConfig: "libmodbus", providers: [.apt(["libmodbus-dev"])]),
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        // adjtimex(2) from the C library's <sys/timex.h>: the kernel's clock synchronisation state (issue 14).
        .systemLibrary(name: "CTimex"),
        // mallopt(3) and malloc_trim(3) from the C library's <malloc.h>: the process's allocator settings (issue 17).
        .systemLibrary(name: "CMalloc"),

        .target(name: "PantauYAML", dependencies: ["CYAML"]),
        // The file system, threads, wake-up pipes and the system clock: the I/O PantauCore's values need, kept
        // out of PantauCore so that it holds only values and rules.
        .target(name: "PantauPlatform"),
        .target(name: "PantauCore", dependencies: ["PantauYAML", "PantauPlatform"]),
        .target(
            name: "PantauModbus",
            dependencies: [
                "PantauCore", "PantauPlatform", "CModbus", .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "PantauMQTT",
            dependencies: [
                "PantauCore", "PantauPlatform", "CMosquitto", "COpenSSL",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "PantauJournal",
            dependencies: [
                "PantauCore", "PantauPlatform", "CSQLite", .product(name: "Logging", package: "swift-log"),
            ]),
        // Sparkplug B edge node: payloads from Sources/PantauSparkplug/sparkplug_b.proto (scripts/gen-sparkplug.sh).
        .target(
            name: "PantauSparkplug",
            dependencies: [
                "PantauCore", "PantauMQTT", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ], exclude: ["sparkplug_b.proto"]),
        .target(
            name: "PantauGateway",
            dependencies: [
                "PantauCore", "PantauPlatform", "PantauModbus", "PantauMQTT", "PantauJournal", "PantauSparkplug",
                "CTimex",
                .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]),
        .executableTarget(
            name: "pantau",
            dependencies: [
                "PantauGateway", "PantauPlatform",
                "CMalloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            // Memory the loader would otherwise read or copy at every start (issue 17, docs/benchmarks.md section 7):
            // lld packs the 62,000 relative relocations of a position-independent executable into a few kB
            // (DT_RELR, glibc 2.36) instead of 1.5 MB of .rela.dyn, and the executable does not export its
            // symbols (the Swift toolchain's static-stdlib link asks for -export-dynamic: 1.9 MB of .dynsym,
            // .dynstr and .gnu.hash that nothing looks up; crash backtraces read .symtab, which build-deb keeps).
            linkerSettings: [
                .unsafeFlags([
                    "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker",
                    "--no-export-dynamic",
                ])
            ]),

        .testTarget(name: "PantauPlatformTests", dependencies: ["PantauPlatform"]),
        .testTarget(name: "PantauCoreTests", dependencies: ["PantauCore", "PantauYAML", "PantauPlatform"]),
        .testTarget(name: "PantauModbusTests", dependencies: ["PantauModbus", "PantauPlatform"]),
        .testTarget(name: "PantauMQTTTests", dependencies: ["PantauMQTT", "PantauPlatform"]),
        .testTarget(name: "PantauJournalTests", dependencies: ["PantauJournal"]),
        .testTarget(name: "PantauGatewayTests", dependencies: ["PantauGateway", "PantauPlatform"]),
        .testTarget(name: "PantauSparkplugTests", dependencies: ["PantauSparkplug"]),
    ]
)
