// swift-tools-version:6.0
// libFuzzer targets for Pantau, built apart from the main package so its tests never need the sanitizers:
//   cd fuzz && swift build -c debug -Xswiftc -sanitize=fuzzer,address
//   .build/debug/FuzzModbusTCP corpus/FuzzModbusTCP -max_total_time=60
import PackageDescription

let package = Package(
    name: "pantau-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "pantau", path: "..")],
    targets: [
        // libFuzzer brings `main`; -parse-as-library keeps Swift from generating one from the file's top level.
        .executableTarget(
            name: "FuzzModbusTCP", dependencies: [.product(name: "PantauModbus", package: "pantau")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(
            name: "FuzzModbusRTU", dependencies: [.product(name: "PantauModbus", package: "pantau")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ]
)
