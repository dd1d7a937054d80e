import Foundation
import PantauCore
import Testing

/// The repository's firmware-profiles folder, found from this source file.
let shippedProfilesDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("firmware-profiles").path
}()

@Suite struct ShippedProfilesTests {
    static let library = ProfileLibrary(directories: [shippedProfilesDirectory])

    @Test func everyShippedProfileParses() {
        #expect(Self.library.problems.isEmpty, "\(Self.library.problems)")
        #expect(Self.library.profiles.count == 17)
    }

    @Test(arguments: library.profiles.keys.sorted())
    func shippedProfilePassesItsVectors(id: String) throws {
        let profile = try #require(Self.library[id])
        #expect(!profile.testVectors.isEmpty, "\(id) has no test vectors")
        #expect(!profile.source.isEmpty)
        let outcome = ProfileVectors.run(profile)
        #expect(outcome.passed, "\(outcome.mismatches)")
        #expect(outcome.checks > 0)
    }

    @Test(arguments: library.profiles.keys.sorted())
    func shippedProfileFitsTheProtocolLimits(id: String) throws {
        let profile = try #require(Self.library[id])
        let plan = ReadPlanner.plan(points: profile.points, timing: profile.timing)
        #expect(plan.allSatisfy { $0.count <= (($0.table.isBitTable) ? 2000 : 125) })
        for point in profile.points {
            #expect(plan.contains { $0.covers(point) }, "\(id): \(point.name) is not read by any request")
        }
    }
}

@Suite struct ProfileParserTests {
    func errors(_ points: String, timing: String = "") -> [String] {
        let text = """
            id: t
            manufacturer: M
            model: X
            source: test
            \(timing)
            points:
            \(points)
            """
        switch ProfileParser.parse(text, file: "t.yaml") {
        case .success: return []
        case .failure(let e): return e.diagnostics.map(\.description)
        }
    }

    @Test func rejectsPLCStyleAddressesWithAnExplanation() {
        let e = errors("  - {name: a, quantity: temperature, table: holding, address: 40001, type: u16, unit: Cel}")
        #expect(e.count == 1)
        #expect(e.first?.contains("t.yaml:7:63: address 40001 looks like PLC (Modicon) notation") == true, "\(e)")
        #expect(e.first?.contains("write 0") == true)
    }

    @Test func rejectsOverlapsButAllowsBitFieldsOfOneRegister() {
        let overlap = errors(
            """
              - {name: a, quantity: counter, table: holding, address: 0, type: u32, unit: count}
              - {name: b, quantity: counter, table: holding, address: 1, type: u16, unit: count}
            """)
        #expect(overlap.count == 1 && overlap[0].contains("point 'b' overlaps point 'a'"), "\(overlap)")
        let bits = errors(
            """
              - {name: a, quantity: status, table: holding, address: 0, type: bit, bit: 0}
              - {name: b, quantity: status, table: holding, address: 0, type: bit, bit: 1}
            """)
        #expect(bits.isEmpty, "\(bits)")
    }

    @Test func rejectsDuplicatesUnknownVocabularyAndOversizedReads() {
        let e = errors(
            """
              - {name: a, quantity: temperature, table: input, address: 0, type: i16, unit: Cel}
              - {name: a, quantity: temperature, table: input, address: 1, type: i16, unit: Cel}
              - {name: c, quantity: temprature, table: input, address: 2, type: i16, unit: degC}
              - {name: d, quantity: status, table: input, address: 10, type: string, length: 20, unit: ""}
            """, timing: "timing: {max_registers_per_read: 16}")
        #expect(e.contains { $0.contains("duplicate point name 'a'") }, "\(e)")
        #expect(e.contains { $0.contains("unknown quantity 'temprature'") })
        #expect(e.contains { $0.contains("unknown unit 'degC'") })
        #expect(e.contains { $0.contains("spans 20 registers, more than one read allows (16)") })
        #expect(e.count == 4, "\(e)")
    }

    @Test func rejectsWrongByteOrdersAndMissingDecimalsSources() {
        let e = errors(
            """
              - {name: a, quantity: distance, table: holding, address: 0, type: f32, order: CDA, unit: m}
              - {name: b, quantity: distance, table: holding, address: 2, type: i16, decimals_from: nope, unit: m}
            """)
        #expect(e.contains { $0.contains("must name all 4 bytes of a f32, e.g. ABCD, found 'CDA'") }, "\(e)")
        #expect(e.contains { $0.contains("takes decimals from 'nope', which is not a point") })
    }
}
