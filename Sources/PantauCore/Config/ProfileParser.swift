import PantauPlatform
import PantauYAML

/// Parses and validates device profiles (`firmware-profiles/*.yaml`, format in firmware-profiles/README.md).
public enum ProfileParser {
    /// Parses one profile; every problem is reported with its line and column.
    public static func parse(_ text: String, file: String) -> Result<DeviceProfile, ConfigurationError> {
        parse(bytes: Array(text.utf8), file: file)
    }

    /// Parses the bytes of one profile: UTF-8 only, within `YAMLLimits.profile`.
    public static func parse(bytes: [UInt8], file: String) -> Result<DeviceProfile, ConfigurationError> {
        let reader = NodeReader(file: file)
        guard let root = reader.parseDocument(bytes: bytes, limits: .profile) else {
            if reader.diagnostics.isEmpty { reader.error(at: YAMLMark(line: 1, column: 1), "the profile is empty") }
            return .failure(ConfigurationError(reader.diagnostics))
        }
        let profile = parse(root, reader: reader, file: file)
        if let profile, reader.diagnostics.isEmpty { return .success(profile) }
        return .failure(ConfigurationError(reader.diagnostics))
    }

    /// Reads and parses a profile file. Its `id` must be its file name without `.yaml`/`.yml`, because configs
    /// name profiles by id and the library finds them by file name.
    public static func load(path: String) -> Result<DeviceProfile, ConfigurationError> {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readBytes(path, limit: YAMLLimits.profile.maximumBytes)
        } catch {
            let place = SourceLocation(file: path, line: 1, column: 1)
            return .failure(ConfigurationError([Diagnostic(place, "cannot read: \(error.reason)")]))
        }
        let reader = NodeReader(file: path)
        guard let root = reader.parseDocument(bytes: bytes, limits: .profile) else {
            if reader.diagnostics.isEmpty { reader.error(at: YAMLMark(line: 1, column: 1), "the profile is empty") }
            return .failure(ConfigurationError(reader.diagnostics))
        }
        let profile = parse(root, reader: reader, file: path)
        let name = String(path.split(separator: "/").last ?? Substring(path))
        var stem = name
        for suffix in [".yaml", ".yml"] where name.hasSuffix(suffix) { stem = String(name.dropLast(suffix.count)) }
        if let profile, profile.id != stem {
            let node = root.mappingValue("id") ?? root
            reader.error(
                node,
                "profile id '\(profile.id)' does not match its file name '\(name)' "
                    + "(configs find a profile by its file name)")
        }
        if let profile, reader.diagnostics.isEmpty { return .success(profile) }
        return .failure(ConfigurationError(reader.diagnostics))
    }

    static func parse(_ root: YAMLNode, reader: NodeReader, file: String) -> DeviceProfile? {
        guard let map = reader.mapping(root, what: "the profile") else { return nil }
        let id = map.string("id", required: true)
        if let id, let node = map.value("id"), !isIdentifier(id, extra: "-") {
            reader.error(node, "profile id '\(id)' may only use lowercase letters, digits and '-'")
        } else if let id, let node = map.value("id"), id.utf8.count > IdentifierLimits.name {
            reader.error(node, "profile id '\(id.prefix(20))...' is longer than \(IdentifierLimits.name) characters")
        }
        let version = map.int("version", range: 1...1_000_000) ?? 1
        let manufacturer = map.string("manufacturer", required: true) ?? ""
        let model = map.string("model", required: true) ?? ""
        let firmware = map.string("firmware") ?? "any"
        let source = map.string("source", required: true) ?? ""
        let unitId = map.int("unit_id", range: 0...255)
        let serial = map.mapping("serial").map { parseSerial($0) } ?? SerialSettings()
        let timing = map.mapping("timing").map { parseTiming($0, base: ProfileTiming()) } ?? ProfileTiming()
        var identification: [IdentificationRule] = []
        for item in map.list("identification") ?? [] {
            guard let m = reader.mapping(item, what: "an identification rule") else { continue }
            let table = m.choice("table", tableChoices, required: true)
            let address = m.int("address", required: true, range: 0...65535)
            var expect: [UInt16] = []
            for v in m.list("expect", required: true) ?? [] {
                if let n = reader.int(v, what: "an expected register value", range: 0...65535) {
                    expect.append(UInt16(n))
                }
            }
            m.finish()
            if let table, let address {
                identification.append(IdentificationRule(table: table, address: address, expect: expect))
            }
        }
        var points: [PointSpec] = []
        var pointNodes: [String: YAMLNode] = [:]
        if let list = map.list("points", required: true) {
            if list.isEmpty, let node = map.value("points") { reader.error(node, "a profile needs at least one point") }
            // Names are checked for duplicates as written, so a duplicate is reported even when one of the two
            // points has another error.
            var namesSeen: [String: YAMLNode] = [:]
            for item in list {
                let parsed = parsePoint(item, reader: reader)
                if let name = item.mappingValue("name")?.scalar {
                    if let earlier = namesSeen[name] {
                        reader.error(
                            item, "duplicate point name '\(name)' (first defined at line \(earlier.mark.line))")
                        continue
                    }
                    namesSeen[name] = item
                }
                guard let point = parsed else { continue }
                pointNodes[point.name] = item
                points.append(point)
            }
        }
        var vectors: [TestVector] = []
        for item in map.list("test_vectors") ?? [] {
            if let vector = parseVector(item, reader: reader, points: points) { vectors.append(vector) }
        }
        let frameSection = readFrameSection(map, reader: reader)
        map.finish()
        guard let id else { return nil }
        var profile = DeviceProfile(
            id: id, version: version, manufacturer: manufacturer, model: model, firmware: firmware, source: source,
            defaultUnitId: unitId, serial: serial, timing: timing, identification: identification, points: points,
            testVectors: vectors, file: file)
        attachFrame(frameSection, to: &profile, pointNodes: pointNodes, reader: reader)
        validate(profile, nodes: pointNodes, reader: reader)
        return profile
    }

    static let tableChoices: [(String, RegisterTable)] = RegisterTable.allCases.map { ($0.rawValue, $0) }

    static func parseSerial(_ m: MappingReader) -> SerialSettings {
        var s = SerialSettings()
        if let baud = m.int("baud") {
            if supportedBauds.contains(baud) {
                s.baud = baud
            } else if let node = m.value("baud") {
                m.reader.error(
                    node,
                    "baud \(baud) is not a standard rate (\(supportedBauds.map(String.init).joined(separator: ", ")))")
            }
        }
        if let parity = m.choice("parity", [("none", SerialSettings.Parity.none), ("even", .even), ("odd", .odd)]) {
            s.parity = parity
        }
        if let bits = m.int("data_bits", range: 7...8) { s.dataBits = bits }
        if let bits = m.int("stop_bits", range: 1...2) { s.stopBits = bits }
        m.finish()
        return s
    }

    /// Rates libmodbus accepts; any other silently becomes 9600 there, so it is refused here.
    public static let supportedBauds: [Int] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400]

    /// Timing keys shared by profiles and device overrides in the gateway config.
    static func parseTiming(_ m: MappingReader, base: ProfileTiming) -> ProfileTiming {
        var t = base
        if let v = m.int("response_timeout_ms", range: 10...60_000) { t.responseTimeoutMs = v }
        if let v = m.int("inter_request_delay_ms", range: 0...60_000) { t.interRequestDelayMs = v }
        if let v = m.int("retries", range: 0...10) { t.retries = v }
        if let v = m.int("max_registers_per_read", range: 1...125) { t.maxRegistersPerRead = v }
        if let v = m.int("max_gap", range: 0...124) { t.maxGap = v }
        if let v = m.bool("single_point_reads") { t.singlePointReads = v }
        m.finish()
        return t
    }

    static func parsePoint(_ node: YAMLNode, reader: NodeReader) -> PointSpec? {
        guard let m = reader.mapping(node, what: "a point") else { return nil }
        let name = m.string("name", required: true)
        let what = name.map { "point '\($0)'" } ?? "a point"
        m.what = what
        if let name, let n = m.value("name"), !isIdentifier(name, extra: "_") {
            reader.error(n, "point name '\(name)' may only use lowercase letters, digits and '_'")
        } else if let name, let n = m.value("name"), name.utf8.count > IdentifierLimits.name {
            reader.error(n, "point name '\(name.prefix(20))...' is longer than \(IdentifierLimits.name) characters")
        }
        let quantity = m.string("quantity", required: true)
        if let quantity, !Vocabulary.quantities.contains(quantity), let n = m.value("quantity") {
            reader.error(
                n,
                "unknown quantity '\(quantity)' in \(what) (known: \(Vocabulary.quantities.sorted().joined(separator: ", ")))"
            )
        }
        let table = m.choice("table", tableChoices, required: true)
        let type = m.choice("type", ValueType.allCases.map { ($0.rawValue, $0) }, required: true)
        var address: Int?
        if let n = m.value("address", required: true),
            let a = reader.int(n, what: "'address' of \(what)", range: 0...65535)
        {
            if let table, let hint = plcAddressHint(a, table: table) {
                reader.error(n, hint)
            } else {
                address = a
            }
        }
        if quantity == "identifier", let type, type != .string, let n = m.value("quantity") {
            reader.error(n, "quantity identifier is for text read as type string; \(what) is \(type.rawValue)")
        }
        let length = m.int("length", range: 1...123)
        if type == .string && length == nil { reader.error(node, "\(what) is a string and needs 'length' (registers)") }
        var order: ByteOrder?
        if let n = m.value("order"), let text = reader.string(n, what: "'order' of \(what)"), let type {
            let bytes = type == .string ? 2 : (type.registerCount ?? 1) * 2
            if type == .bit || (table?.isBitTable ?? false) {
                reader.error(n, "'order' does not apply to \(what): bits have no byte order")
            } else if let o = ByteOrder(text, byteCount: bytes) {
                order = o
            } else {
                let example = String("ABCDEFGH".prefix(bytes))
                reader.error(
                    n,
                    "'order' of \(what) must name all \(bytes) bytes of a \(type.rawValue), e.g. \(example), found '\(text)'"
                )
            }
        }
        let encoding = m.choice(
            "encoding", [("twos_complement", IntegerEncoding.twosComplement), ("sign_magnitude", .signMagnitude)])
        if encoding == .signMagnitude, let type, ![.i16, .i32, .i64].contains(type), let n = m.value("encoding") {
            reader.error(n, "sign_magnitude needs a signed integer type (i16, i32, i64), \(what) is \(type.rawValue)")
        }
        let bit = m.int("bit", range: 0...15)
        if let table, table.isBitTable, bit != nil, let n = m.value("bit") {
            reader.error(
                n,
                "'bit' does not apply to \(what): the \(table.rawValue) table holds single bits, "
                    + "each at its own address")
        }
        if type == .bit, let table, !table.isBitTable, bit == nil {
            reader.error(node, "\(what) reads a bit from a \(table.rawValue) register and needs 'bit' (0-15)")
        }
        if let table, table.isBitTable, let type, type != .bit, let n = m.value("type") {
            reader.error(n, "\(what) is in the \(table.rawValue) table, which holds bits: its type must be bit")
        }
        let scale = m.double("scale")
        if scale == 0, let n = m.value("scale") { reader.error(n, "'scale' of \(what) must not be 0") }
        let offset = m.double("offset")
        let decimalsFrom = m.string("decimals_from")
        let unit = m.string("unit") ?? ""
        if !Vocabulary.units.contains(unit), let n = m.value("unit") {
            reader.error(
                n,
                "unknown unit '\(unit)' in \(what) (known: \(Vocabulary.units.sorted().filter { !$0.isEmpty }.joined(separator: ", ")))"
            )
        }
        var range: ClosedRange<Double>?
        if let n = m.value("range"), let items = reader.list(n, what: "'range' of \(what)") {
            let bounds = items.compactMap { reader.double($0, what: "a bound of 'range' in \(what)") }
            if items.count != 2 {
                reader.error(n, "'range' of \(what) must be [minimum, maximum]")
            } else if bounds.count == 2 {
                if bounds[0] <= bounds[1] {
                    range = bounds[0]...bounds[1]
                } else {
                    reader.error(n, "'range' of \(what) has its minimum above its maximum")
                }
            }
        }
        let publish = m.bool("publish") ?? true
        let writable = parseWritable(m, table: table, type: type, range: range, decimalsFrom: decimalsFrom)
        m.finish()
        guard let name, let quantity, let table, let type, let address else { return nil }
        var spec = PointSpec(
            name: name, quantity: quantity, table: table, address: address, type: type, order: order,
            length: length ?? 1, bit: bit, encoding: encoding ?? .twosComplement, scale: scale ?? 1,
            offset: offset ?? 0,
            decimalsFrom: decimalsFrom, unit: unit, validRange: range, publish: publish)
        spec.writable = writable
        return spec
    }

    /// Profiles use 0-based protocol addresses; Modicon notation (40001 = holding 0) is the commonest datasheet trap.
    static func plcAddressHint(_ address: Int, table: RegisterTable) -> String? {
        let (lo, hi, prefix): (Int, Int, Int) =
            switch table {
            case .holding: (40001, 49999, 40001)
            case .input: (30001, 39999, 30001)
            case .discrete: (10001, 19999, 10001)
            case .coil: (Int.max, Int.max, 1)
            }
        guard address >= lo && address <= hi else { return nil }
        return "address \(address) looks like PLC (Modicon) notation; profiles use 0-based protocol addresses: "
            + "\(prefix) is \(table.rawValue) address 0, so write \(address - prefix)"
    }

    static func parseVector(_ node: YAMLNode, reader: NodeReader, points: [PointSpec]) -> TestVector? {
        guard let m = reader.mapping(node, what: "a test vector") else { return nil }
        let description = m.string("description") ?? "vector at line \(node.mark.line)"
        var registers: [RegisterTable: [Int: UInt16]] = [:]
        if let regs = m.mapping("registers", required: true) {
            for table in RegisterTable.allCases {
                guard let t = regs.mapping(table.rawValue) else { continue }
                guard case .mapping(let pairs) = t.node.content else { continue }
                for pair in pairs {
                    _ = t.value(pair.key.scalar ?? "")
                    guard let address = pair.key.scalar.flatMap(NodeReader.parseInt), (0...65535).contains(address)
                    else {
                        reader.error(pair.key, "a register address in a test vector must be a number 0-65535")
                        continue
                    }
                    let limit = table.isBitTable ? 1 : 65535
                    if let v = reader.int(
                        pair.value, what: "raw value at \(table.rawValue) \(address)", range: 0...limit)
                    {
                        registers[table, default: [:]][address] = UInt16(v)
                    }
                }
                t.finish()
            }
            regs.finish()
        }
        var expect: [String: PointValue] = [:]
        if let e = m.mapping("expect", required: true), case .mapping(let pairs) = e.node.content {
            for pair in pairs {
                guard let name = pair.key.scalar else { continue }
                _ = e.value(name)
                guard let point = points.first(where: { $0.name == name }) else {
                    reader.error(pair.key, "test vector expects '\(name)', which is not a point of this profile")
                    continue
                }
                switch point.type {
                case .string:
                    if let s = reader.string(pair.value, what: "expected value of '\(name)'") {
                        expect[name] = .text(s)
                    }
                case .bit:
                    if let b = reader.bool(pair.value, what: "expected value of '\(name)'") { expect[name] = .flag(b) }
                default:
                    // An integer literal stays exact (a 64-bit value beyond 2^53 would be rounded as a Double).
                    if let exact = pair.value.scalar.flatMap({ Int128($0) }) {
                        expect[name] = .exact(exact)
                    } else if let d = reader.double(pair.value, what: "expected value of '\(name)'") {
                        expect[name] = .number(d)
                    }
                }
            }
            e.finish()
        }
        m.finish()
        return TestVector(description: description, registers: registers, expect: expect)
    }

    /// Cross-point checks: overlaps, read sizes, references.
    static func validate(_ profile: DeviceProfile, nodes: [String: YAMLNode], reader: NodeReader) {
        let cap = profile.timing.maxRegistersPerRead
        for point in profile.points {
            guard let node = nodes[point.name] else { continue }
            if point.span > cap {
                reader.error(
                    node, "point '\(point.name)' spans \(point.span) registers, more than one read allows (\(cap))")
            }
            if point.address + point.span > 65536 {
                reader.error(node, "point '\(point.name)' runs past the last register address 65535")
            }
            if let source = point.decimalsFrom {
                if let other = profile.point(named: source) {
                    if other.decimalsFrom != nil {
                        reader.error(
                            node,
                            "point '\(point.name)' takes decimals from '\(source)', which itself takes decimals from another point"
                        )
                    }
                } else {
                    reader.error(
                        node,
                        "point '\(point.name)' takes decimals from '\(source)', which is not a point of this profile")
                }
            }
        }
        let sorted = profile.points.sorted { ($0.table.rawValue, $0.address) < ($1.table.rawValue, $1.address) }
        for (i, a) in sorted.enumerated() {
            for b in sorted[(i + 1)...] where b.table == a.table && b.address < a.address + a.span {
                // Several bit fields of one status register share it legitimately.
                let bitsOfOneRegister = a.type == .bit && b.type == .bit && a.address == b.address && a.bit != b.bit
                if !bitsOfOneRegister, let node = nodes[b.name] {
                    reader.error(
                        node,
                        "point '\(b.name)' overlaps point '\(a.name)' (\(a.table.rawValue) \(a.address)..<\(a.address + a.span))"
                    )
                }
            }
        }
    }

    static func isIdentifier(_ s: String, extra: Character) -> Bool {
        !s.isEmpty && s.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == extra }
    }
}
