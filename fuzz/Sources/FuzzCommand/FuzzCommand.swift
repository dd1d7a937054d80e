import CFuzzDriver
import PantauCore

/// A remote command's body as it comes off the broker (hostile): the first byte picks the verb, the rest is the
/// body. Parsing never traps; an accepted request keeps its fields within their character sets (so the signed text
/// is unambiguous), and a write plan for it either refuses or encodes registers of the point's span.
private let profile = try! ProfileParser.parse(
    """
    id: fuzz-pump
    manufacturer: Fuzz
    model: Pump
    source: fuzz
    points:
      - {name: setpoint, quantity: water_level, table: holding, address: 10, type: i32, scale: 0.01, unit: m,
         range: [-5, 5], writable: true}
      - {name: relay, quantity: status, table: coil, address: 3, type: bit, writable: true}
    """, file: "fuzz-pump.yaml"
).get()

private let devices: [DeviceConfig] = {
    var device = DeviceConfig(name: "pump-1", bus: "b", unitId: 1, profile: profile, pollInterval: .seconds(10))
    device.writes = true
    return [device]
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCommand(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let first = bytes.first else { return 0 }
    let verb = CommandVerb.allCases[Int(first) % CommandVerb.allCases.count]
    guard case .success(let request) = CommandRequest.parse(verb: verb, body: Array(bytes.dropFirst())) else {
        return 0
    }
    let arguments = request.canonicalArguments
    precondition(!arguments.contains("\n"), "a newline in the signed arguments")
    precondition(arguments.split(separator: "&").allSatisfy { $0.split(separator: "=").count == 2 })
    if verb == .write, let device = request.device, let point = request.point, let value = request.value,
        case .success(let plan) = WritePlan.make(device: device, point: point, value: value, devices: devices)
    {
        precondition(plan.words.count == plan.point.span)
        if let range = plan.point.validRange, let number = plan.value.numeric {
            precondition(range.contains(number), "a write outside the declared range was planned")
        }
    }
    return 0
}

/// The executable's entry point (SwiftPM links `main` to `FuzzCommand_main`): libFuzzer's driver with the
/// function above.
@_cdecl("FuzzCommand_main")
public func fuzzCommandMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    pantau_fuzz_run(argc, argv, fuzzCommand)
}
