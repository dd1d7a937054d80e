import PantauYAML

extension ProfileParser {
    /// The `frame:` and `frame_vectors:` keys of a profile, read before the profile's mapping is finished.
    struct FrameSection {
        var frame: FrameSpec?
        var node: YAMLNode?
        var vectors: [YAMLNode]
        var sdi12: SDI12Spec?
        var sdi12Node: YAMLNode?
        var sdi12Vectors: [YAMLNode] = []
    }

    static func readFrameSection(_ map: MappingReader, reader: NodeReader) -> FrameSection {
        let node = map.value("frame")
        let frame = map.mapping("frame").flatMap { parseFrame($0, reader: reader) }
        let vectors = map.list("frame_vectors") ?? []
        if node == nil, let first = vectors.first {
            reader.error(first, "'frame_vectors' need a 'frame' section describing the frame")
        }
        var section = FrameSection(frame: frame, node: node, vectors: vectors)
        readSDI12Section(map, reader: reader, into: &section)
        return section
    }

    /// Hex bytes such as "42 4D E2 00 00 01 71".
    static func bytes(_ m: MappingReader, _ key: String, required: Bool = false) -> [UInt8]? {
        guard let node = m.value(key, required: required),
            let text = m.reader.string(node, what: "'\(key)' in \(m.what)")
        else { return nil }
        guard let bytes = parseHexBytes(text) else {
            m.reader.error(node, "'\(key)' in \(m.what) must be hex bytes like \"42 4D E2\", found '\(text)'")
            return nil
        }
        return bytes
    }

    static func parseFrame(_ m: MappingReader, reader: NodeReader) -> FrameSpec? {
        m.what = "the frame"
        let mode = m.choice("mode", FrameSpec.Mode.allCases.map { ($0.rawValue, $0) }, required: true)
        let start = bytes(m, "start", required: true)
        let length = m.int("length", required: true, range: 2...250)
        var lengthField: FrameSpec.LengthField?
        if let f = m.mapping("length_field") {
            f.what = "'length_field' of the frame"
            if let offset = f.int("offset", required: true, range: 0...248),
                let value = f.int("value", required: true, range: 0...65535)
            {
                lengthField = FrameSpec.LengthField(offset: offset, value: value)
            }
            f.finish()
        }
        let end = bytes(m, "end") ?? []
        var checksum = FrameSpec.Checksum(kind: .none)
        if let c = m.mapping("checksum") {
            c.what = "'checksum' of the frame"
            let kinds = FrameSpec.ChecksumKind.allCases.map { ($0.rawValue, $0) }
            let kind = c.choice("kind", kinds, required: true) ?? .none
            checksum = FrameSpec.Checksum(
                kind: kind, from: c.int("from", range: 0...250) ?? 0, to: c.int("to", range: 0...250) ?? 0,
                at: c.int("at", required: kind != .none, range: 0...250) ?? 0,
                littleEndian: c.choice("order", [("big", false), ("little", true)]) ?? false)
            if checksum.to <= checksum.from, kind != .none {
                reader.error(c.node, "the checksum's 'from' must be below its 'to' (the bytes summed: from..<to)")
            }
            c.finish()
        }
        let setup = bytes(m, "setup") ?? []
        let query = bytes(m, "query") ?? []
        m.finish()
        guard let mode, let start, let length else { return nil }
        let frame = FrameSpec(
            mode: mode, start: start, length: length, lengthField: lengthField, end: end, checksum: checksum,
            setup: setup, query: query)
        if start.isEmpty || start.count >= length {
            reader.error(m.node, "the frame's 'start' bytes must be at least one byte and shorter than the frame")
        }
        if mode == .passive && query.isEmpty {
            reader.error(m.node, "a passive frame needs 'query': the bytes that ask the sensor for one frame")
        }
        if checksum.kind != .none && (checksum.to > length || checksum.at + checksum.width > length) {
            reader.error(m.node, "the checksum lies outside the \(length)-byte frame")
        }
        if let f = lengthField, f.offset + 2 > length {
            reader.error(m.node, "the length field lies outside the \(length)-byte frame")
        }
        return frame
    }

    /// Checks the points against the frame, makes one read cover the whole frame, and turns each frame vector
    /// into a register vector after checking it the way the gateway checks a received frame.
    static func attachFrame(
        _ section: FrameSection, to profile: inout DeviceProfile, pointNodes: [String: YAMLNode], reader: NodeReader
    ) {
        attachSDI12(section, to: &profile, pointNodes: pointNodes, reader: reader)
        guard let frame = section.frame else { return }
        profile.frame = frame
        // One poll reads one frame: a single request must span every point.
        profile.timing.spanEveryPointInOneRead()
        for point in profile.points {
            guard let node = pointNodes[point.name] else { continue }
            if point.table != .input {
                reader.error(
                    node,
                    "point '\(point.name)' of a framed sensor must be in the input table "
                        + "(input register N = frame bytes 2N and 2N+1)")
            } else if point.address + point.span > frame.registerCount {
                reader.error(
                    node,
                    "point '\(point.name)' reads past the \(frame.length)-byte frame "
                        + "(input registers 0...\(frame.registerCount - 1))")
            }
        }
        eachVector(section.vectors, what: "a frame vector", kind: "frame", reader: reader) { m, description, item in
            let bytes = bytes(m, "frame", required: true)
            let fault = m.choice("expect_fault", [("checksum", FrameSpec.Fault.checksum), ("shape", .shape)])
            let expect = numericExpectations(m, of: profile, vector: "frame", reader: reader)
            m.finish()
            guard let bytes else { return }
            switch (frame.scan(bytes), fault) {
            case (.frame(0, let good), nil) where good.count == bytes.count:
                let words = FrameSpec.registers(good)
                let registers = Dictionary(uniqueKeysWithValues: words.enumerated().map { ($0.offset, $0.element) })
                profile.testVectors.append(
                    TestVector(description: description, registers: [.input: registers], expect: expect))
            case (.invalid(0, let found, _), let wanted?) where found == wanted:
                return
            case (let outcome, _):
                reader.error(
                    item,
                    "frame vector '\(description)': the frame check gives \(describe(outcome)), "
                        + "expected " + (fault.map { "a \($0.rawValue) fault" } ?? "one whole good frame"))
            }
        }
    }

    /// Each frame or SDI-12 vector (`what` names one in the error when it is not a mapping) with its description,
    /// by default "`kind` vector at line N".
    static func eachVector(
        _ items: [YAMLNode], what: String, kind: String, reader: NodeReader,
        _ body: (MappingReader, _ description: String, _ item: YAMLNode) -> Void
    ) {
        for item in items {
            guard let m = reader.mapping(item, what: what) else { continue }
            body(m, m.string("description") ?? "\(kind) vector at line \(item.mark.line)", item)
        }
    }

    /// A frame or SDI-12 vector's `expect:` mapping: point names of this profile, each with a number.
    static func numericExpectations(
        _ m: MappingReader, of profile: DeviceProfile, vector kind: String, reader: NodeReader
    ) -> [String: PointValue] {
        var expect: [String: PointValue] = [:]
        guard let e = m.mapping("expect"), case .mapping(let pairs) = e.node.content else { return expect }
        for pair in pairs {
            guard let name = pair.key.scalar else { continue }
            _ = e.value(name)
            guard profile.point(named: name) != nil else {
                reader.error(pair.key, "\(kind) vector expects '\(name)', which is not a point of this profile")
                continue
            }
            if let d = reader.double(pair.value, what: "expected value of '\(name)'") { expect[name] = .number(d) }
        }
        e.finish()
        return expect
    }

    private static func describe(_ scan: FrameSpec.Scan) -> String {
        switch scan {
        case .needMore(let skip): return "an incomplete frame (\(skip) bytes of noise first)"
        case .frame(let skip, let bytes): return "a good \(bytes.count)-byte frame after \(skip) bytes"
        case .invalid(_, _, let message): return message
        }
    }
}
