import CFuzzDriver
import FoundationEssentials
import PantauCore

/// The telemetry (SenML) encoder with arbitrary strings and values: the output must be JSON that decodes back to
/// exactly the names, units and values put in (escaping of quotes, control characters and non-ASCII text).
///
/// Input layout, consumed front to back (short input just ends the pack): per reading one flag byte
/// (value kind, quality), 8 bytes of value or time, then a length-prefixed point name, unit and text.
private struct Input {
    var bytes: ArraySlice<UInt8>
    mutating func byte() -> UInt8? { bytes.popFirst() }
    mutating func u64() -> UInt64? {
        guard bytes.count >= 8 else { return nil }
        var v: UInt64 = 0
        for _ in 0..<8 { v = v << 8 | UInt64(bytes.removeFirst()) }
        return v
    }
    mutating func string() -> String? {
        guard let n = byte() else { return nil }
        let count = min(Int(n), bytes.count)
        let s = String(decoding: bytes.prefix(count), as: UTF8.self)
        bytes.removeFirst(count)
        return s
    }
}

private struct Decoded: Decodable {
    var bn: String?
    var n: String
    var u: String?
    var v: Double?
    var vs: String?
    var vb: Bool?
    var q: String
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPayload(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = Input(bytes: ArraySlice(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []))
    guard let site = input.string(), let gateway = input.string(), let device = input.string() else { return 0 }
    // Times a gateway can produce: within a few centuries of the epoch, so differences stay meaningful.
    let base = Int64(input.u64().map { $0 % (1 << 43) } ?? 0)
    var readings: [Reading] = []
    while readings.count < 64, let flags = input.byte(), let raw = input.u64(), let name = input.string(),
        let unit = input.string(), let text = input.string()
    {
        let value: PointValue? =
            switch flags & 3 {
            case 0: .number(Double(bitPattern: raw))
            case 1: .text(text)
            case 2: .flag(raw & 1 == 1)
            default: flags & 0x40 == 0 ? nil : .exact(flags & 0x20 == 0 ? Int128(raw) : Int128(Int64(bitPattern: raw)))
            }
        let quality = Quality.allCases[Int(flags >> 2) % Quality.allCases.count]
        let at = flags & 0x80 == 0 ? base : base + Int64(raw % 100_000)
        readings.append(
            Reading(
                device: device, point: name, quantity: "q", unit: unit, value: value, quality: quality, acquiredAt: at))
    }
    let identity = GatewayIdentity(site: site, id: gateway)
    guard let body = PayloadEncoder.telemetry(readings, identity: identity, device: device) else {
        precondition(readings.isEmpty)
        return 0
    }
    let records: [Decoded]
    do {
        records = try JSONDecoder().decode([Decoded].self, from: Data(body))
    } catch {
        preconditionFailure("telemetry is not valid JSON: \(error)\n\(String(decoding: body, as: UTF8.self))")
    }
    precondition(records.count == readings.count)
    precondition(records[0].bn == PayloadEncoder.baseName(identity: identity, device: device))
    for (record, reading) in zip(records, readings) {
        precondition(record.n == reading.point, "name changed in JSON: \(record.n) vs \(reading.point)")
        precondition(record.q == reading.quality.rawValue)
        precondition((record.u ?? "") == reading.unit)
        switch reading.value {
        case .number(let v)?: precondition(v.isFinite ? record.v == v : record.v == nil, "number changed: \(v)")
        case .text(let s)?: precondition(record.vs == s, "text changed in JSON")
        case .flag(let b)?: precondition(record.vb == b)
        case .integer(let i)?:
            // Beyond 2^53: every digit on the wire (a JSON decoder then rounds it to the nearest Double).
            precondition(record.v == Double(i), "integer changed: \(i)")
            precondition(String(decoding: body, as: UTF8.self).contains("\"v\":\(i)"), "integer not exact: \(i)")
        case nil: precondition(record.v == nil && record.vs == nil && record.vb == nil)
        }
    }
    return 0
}

/// The executable's entry point (SwiftPM links `main` to `FuzzPayload_main`): libFuzzer's driver with the
/// function above.
@_cdecl("FuzzPayload_main")
public func fuzzPayloadMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    pantau_fuzz_run(argc, argv, fuzzPayload)
}
