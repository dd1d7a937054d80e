import PantauYAML

extension ProfileParser {
    /// The `sdi12:` and `sdi12_vectors:` keys of a profile.
    static func readSDI12Section(_ map: MappingReader, reader: NodeReader, into section: inout FrameSection) {
        section.sdi12Node = map.value("sdi12")
        if let m = map.mapping("sdi12") {
            m.what = "the sdi12 section"
            let command = m.choice("command", SDI12Spec.Command.allCases.map { ($0.rawValue, $0) }, required: true)
            let values = m.int("values", required: true, range: 1...31)
            m.finish()
            if let command, let values {
                if !(command == .C || command == .CC), values > 9 {
                    reader.error(m.node, "aM! announces at most 9 values; use command C for more")
                }
                section.sdi12 = SDI12Spec(command: command, values: values)
            }
        }
        section.sdi12Vectors = map.list("sdi12_vectors") ?? []
        if section.sdi12Node == nil, let first = section.sdi12Vectors.first {
            reader.error(first, "'sdi12_vectors' need an 'sdi12' section")
        }
        if section.sdi12Node != nil, let node = section.node {
            reader.error(node, "a profile is either a framed UART sensor ('frame') or an SDI-12 sensor ('sdi12')")
        }
    }

    /// Checks the points against the measurement's values, makes one read cover them all, and turns each SDI-12
    /// vector (a data response, checked like the gateway checks one) into a register vector.
    static func attachSDI12(
        _ section: FrameSection, to profile: inout DeviceProfile, pointNodes: [String: YAMLNode], reader: NodeReader
    ) {
        guard let spec = section.sdi12 else { return }
        profile.sdi12 = spec
        profile.timing.spanEveryPointInOneRead()
        for point in profile.points {
            guard let node = pointNodes[point.name] else { continue }
            let ok = point.table == .input && point.type == .f64 && point.address % SDI12Spec.registersPerValue == 0
            if !ok {
                reader.error(
                    node,
                    "point '\(point.name)' of an SDI-12 sensor must be `table: input, type: f64` at "
                        + "address 4 x (value index - 1): value 1 is address 0, value 2 address 4")
            } else if point.address / SDI12Spec.registersPerValue >= spec.values {
                reader.error(
                    node,
                    "point '\(point.name)' reads value \(point.address / 4 + 1), but the measurement "
                        + "gives \(spec.values)")
            }
        }
        eachVector(section.sdi12Vectors, what: "an SDI-12 vector", kind: "SDI-12", reader: reader) {
            m, description, item in
            let response = m.string("response", required: true)
            let fault = m.choice("expect_fault", [("crc", SDI12Spec.Fault.crc), ("shape", .shape)])
            let expect = numericExpectations(m, of: profile, vector: "SDI-12", reader: reader)
            m.finish()
            guard let response, let address = response.utf8.first else { return }
            switch (SDI12Spec.parseData(Array(response.utf8), address: address, crc: spec.crc), fault) {
            case (.success(let values), nil):
                profile.testVectors.append(
                    TestVector(
                        description: description, registers: [.input: SDI12Spec.registers(values)], expect: expect))
            case (.failure(let failure), let wanted?) where failure.fault == wanted:
                return
            case (.success(let values), let wanted?):
                reader.error(
                    item, "SDI-12 vector '\(description)': parsed \(values), expected a \(wanted.rawValue) fault")
            case (.failure(let failure), _):
                reader.error(item, "SDI-12 vector '\(description)': \(failure.message)")
            }
        }
    }
}
