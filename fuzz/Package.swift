// swift-tools-version:6.0
// libFuzzer targets for Pantau, kept out of the main package so `swift build` there is unaffected.
// Build and run: scripts/fuzz.sh (see docs/fuzzing.md). One executable target per Sources/Fuzz* folder, whose
// entry point is `@_cdecl("<Target>_main")` calling `pantau_fuzz_run` with its LLVMFuzzerTestOneInput.
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name, which differs between clones (main, a worktree, CI).
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent
let core: Target.Dependency = .product(name: "PantauCore", package: root)
let modbus: Target.Dependency = .product(name: "PantauModbus", package: root)
let sparkplug: Target.Dependency = .product(name: "PantauSparkplug", package: root)

let package = Package(
    name: "pantau-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "..")
    ],
    targets: [
        // Hands each target's entry point to libFuzzer's driver (not a fuzz target itself).
        .target(name: "CFuzzDriver"),
        .executableTarget(name: "FuzzConfig", dependencies: [core, "CFuzzDriver"]),
        .executableTarget(name: "FuzzProfile", dependencies: [core, "CFuzzDriver"]),
        .executableTarget(name: "FuzzPayload", dependencies: [core, "CFuzzDriver"]),
        .executableTarget(name: "FuzzCommand", dependencies: [core, "CFuzzDriver"]),
        .executableTarget(name: "FuzzSparkplugCommand", dependencies: [core, sparkplug, "CFuzzDriver"]),
        // These two hand their entry point to libFuzzer themselves (LLVMFuzzerRunDriver).
        .executableTarget(name: "FuzzModbusTCP", dependencies: [modbus]),
        .executableTarget(name: "FuzzModbusRTU", dependencies: [modbus]),
    ]
)
