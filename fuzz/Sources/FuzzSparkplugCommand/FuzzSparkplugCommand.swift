import CFuzzDriver
import PantauCore
import PantauSparkplug

/// A Sparkplug NCMD/DCMD payload as it comes off the broker (hostile): the first byte picks NCMD or DCMD, the rest
/// is the protobuf. Parsing never traps; an accepted command is a request the core's own checks accept (fields
/// within their character sets, so the signed text is unambiguous), and a write plan for it either refuses or
/// encodes registers of the point's span within the declared range.
private let profile = try! ProfileParser.parse(
    """
    id: fuzz-pump
    manufacturer: Fuzz
    model: Pump
    source: fuzz
    points:
      - {name: setpoint, quantity: water_level, table: holding, address: 10, type: i32, scale: 0.01, unit: m,
         range: [-5, 5], writable: true}
      - {name: count, quantity: counter, table: holding, address: 20, type: u16, unit: "", range: [0, 1000],
         writable: true}
      - {name: relay, quantity: status, table: coil, address: 3, type: bit, writable: true}
    """, file: "fuzz-pump.yaml"
).get()

private let devices: [DeviceConfig] = {
    var device = DeviceConfig(name: "pump-1", bus: "b", unitId: 1, profile: profile, pollInterval: .seconds(10))
    device.writes = true
    return [device]
}()

private let edge = SparkplugEdge(
    topics: SparkplugTopics(group: "g", edgeNode: "e"), devices: devices, savedBdSeq: nil, saveBdSeq: { _ in })

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSparkplugCommand(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let first = bytes.first else { return 0 }
    let payload = Array(bytes.dropFirst())
    if first & 1 == 0 {
        let (_, refused) = SparkplugCommandParser.parseNodeCommand(payload)
        precondition(refused.allSatisfy { $0.refusal != nil && $0.asked.utf8.count <= 64 })
        return 0
    }
    let command = SparkplugCommandParser.parseDeviceCommand(payload, device: "pump-1", specs: edge.catalog["pump-1"])
    guard command.refusal == nil else { return 0 }
    guard let request = command.request else { preconditionFailure("accepted without a request") }
    precondition(request.checked() == .success(request), "an accepted request the core's checks refuse")
    let arguments = request.canonicalArguments
    precondition(!arguments.contains("\n"), "a newline in the signed arguments")
    precondition(arguments.split(separator: "&").allSatisfy { $0.split(separator: "=").count == 2 })
    if request.verb == .write, let point = request.point, let value = request.value,
        case .success(let plan) = WritePlan.make(device: "pump-1", point: point, value: value, devices: devices)
    {
        precondition(plan.words.count == plan.point.span)
        if let range = plan.point.validRange, let number = plan.value.numeric {
            precondition(range.contains(number), "a write outside the declared range was planned")
        }
    }
    return 0
}

/// The executable's entry point (SwiftPM links `main` to `FuzzSparkplugCommand_main`): libFuzzer's driver with
/// the function above.
@_cdecl("FuzzSparkplugCommand_main")
public func fuzzSparkplugCommandMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
    -> CInt
{
    pantau_fuzz_run(argc, argv, fuzzSparkplugCommand)
}
