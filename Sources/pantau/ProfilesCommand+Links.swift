import PantauCore
import PantauGateway

/// What `profiles plan` prints for a profile that is not polled with Modbus reads (a framed UART sensor);
/// nil for a Modbus profile.
func linkPlanLines(_ p: DeviceProfile) -> [String]? {
    if let spec = p.sdi12 { return sdi12PlanLines(p, spec) }
    guard let frame = p.frame else { return nil }
    // The first lines keep the Modbus plan's shape (bench/bus.py reads them): the frame is one input-register read.
    let plan = ReadPlanner.plan(points: p.points, timing: p.timing)
    var lines = [planHeader(p, plan) + " (framed UART sensor, bus type uart: one \(frame.length)-byte frame per poll)"]
    for r in plan { lines.append(requestLine(r) + "frame bytes \(r.address * 2)-\(r.endAddress * 2 - 1)") }
    var shape = "  frame    start \(hexString(frame.start))"
    if let field = frame.lengthField { shape += ", length field at byte \(field.offset) = \(field.value)" }
    if !frame.end.isEmpty { shape += ", end \(hexString(frame.end))" }
    let c = frame.checksum
    if c.kind != .none {
        shape +=
            ", checksum \(c.kind.rawValue) of bytes \(c.from)..<\(c.to) at byte \(c.at)"
            + (c.width == 2 ? (c.littleEndian ? " (low byte first)" : " (high byte first)") : "")
    }
    lines.append(shape)
    switch frame.mode {
    case .passive:
        lines.append("  mode     passive: each poll sends \(hexString(frame.query)) and reads one frame")
    case .active:
        lines.append("  mode     active: each poll takes the next frame the sensor streams (older input is dropped)")
    }
    if !frame.setup.isEmpty { lines.append("  setup    \(hexString(frame.setup)) once after the port opens") }
    for point in p.points.sorted(by: { $0.address < $1.address }) {
        let first = point.address * 2
        lines.append(
            "  bytes \(first)-\(first + point.span * 2 - 1)".padding(16) + "\(point.name) (\(point.type.rawValue)"
                + (point.order.description.hasPrefix("A") ? "" : ", \(point.order)") + ")")
    }
    return lines
}

/// An SDI-12 profile's plan: the commands of one measurement and which value each point is.
func sdi12PlanLines(_ p: DeviceProfile, _ spec: SDI12Spec) -> [String] {
    let plan = ReadPlanner.plan(points: p.points, timing: p.timing)
    var lines = [
        planHeader(p, plan) + " (SDI-12 sensor, bus type sdi12: one measurement of \(spec.values) values per poll)"
    ]
    for r in plan { lines.append(requestLine(r) + "values \(r.address / 4 + 1)-\(r.endAddress / 4)") }
    let wait = spec.concurrent ? "wait the announced ttt seconds" : "wait for the service request a<CR><LF>"
    lines.append(
        "  sdi12    break, a\(spec.command.rawValue)! -> a\(spec.concurrent ? "tttnn" : "tttn"), \(wait), "
            + "then aD0!, aD1!, ... until \(spec.values) values" + (spec.crc ? " (each with its 3-character CRC)" : ""))
    for point in p.points.sorted(by: { $0.address < $1.address }) {
        lines.append("  value \(point.address / 4 + 1)".padding(16) + "\(point.name) (\(point.unit))")
    }
    return lines
}

/// The first line of every `profiles plan`: how many requests a poll makes for how many points.
func planHeader(_ p: DeviceProfile, _ plan: [ReadRequest]) -> String {
    "\(p.id): \(DiagnosticsFormat.counted(plan.count, "request")) per poll for \(p.points.count) points"
}

/// One request of a plan, up to what it covers: `  FC03 holding  address 0     count 2    `.
func requestLine(_ r: ReadRequest) -> String {
    "  FC\(String(r.table.readFunctionCode, radix: 16).leftPadded(2)) \(r.table.rawValue.padding(8)) "
        + "address \(String(r.address).padding(5)) count \(String(r.count).padding(4)) "
}
