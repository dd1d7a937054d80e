import CFuzzDriver
import PantauCore

/// Config loading from arbitrary bytes, with a profile library of one real profile so device entries, flood, rain
/// and air-quality sections reach their semantic checks. A crash, trap or sanitizer report is a finding.
private let library: ProfileLibrary = {
    let profile = """
        id: fuzz-env
        manufacturer: Fuzz
        model: Env
        source: fuzz
        points:
          - {name: level, quantity: water_level, table: input, address: 0, type: u16, unit: cm}
          - {name: tips, quantity: rain_tips, table: input, address: 1, type: u16, unit: count}
          - {name: pm25, quantity: pm2_5, table: input, address: 2, type: u16, unit: ug/m3}
          - {name: float, quantity: status, table: discrete, address: 0, type: bit}
        """
    guard case .success(let p) = ProfileParser.parse(profile, file: "fuzz-env.yaml") else { fatalError("seed profile") }
    return ProfileLibrary(profiles: [p])
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    switch ConfigParser.parse(bytes: bytes, file: "fuzz.yaml", library: library, environment: { _ in "pw" }) {
    case .success(let config):
        // An accepted config must be internally consistent.
        precondition(!config.buses.isEmpty && !config.devices.isEmpty)
        for device in config.devices { precondition(device.pollInterval.milliseconds >= 100) }
    case .failure(let error):
        precondition(!error.diagnostics.isEmpty)
        for d in error.diagnostics { precondition(d.location.line >= 1 && d.location.column >= 1) }
    }
    return 0
}

/// The executable's entry point (SwiftPM links `main` to `FuzzConfig_main`): libFuzzer's driver with the
/// function above.
@_cdecl("FuzzConfig_main")
public func fuzzConfigMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    pantau_fuzz_run(argc, argv, fuzzConfig)
}
