import CFuzzDriver
import PantauCore

/// Profile parsing and validation from arbitrary bytes; a profile that parses is also planned and its test
/// vectors run, as `pantau profiles test` would.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProfile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    switch ProfileParser.parse(bytes: bytes, file: "fuzz.yaml") {
    case .success(let profile):
        precondition(!profile.points.isEmpty)
        _ = ReadPlanner.plan(points: profile.points, timing: profile.timing)
        _ = ProfileVectors.run(profile)
    case .failure(let error):
        precondition(!error.diagnostics.isEmpty)
        for d in error.diagnostics { precondition(d.location.line >= 1 && d.location.column >= 1) }
    }
    return 0
}

/// The executable's entry point (SwiftPM links `main` to `FuzzProfile_main`): libFuzzer's driver with the
/// function above.
@_cdecl("FuzzProfile_main")
public func fuzzProfileMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    pantau_fuzz_run(argc, argv, fuzzProfile)
}
