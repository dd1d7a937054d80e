import Foundation
import PantauCore
import PantauYAML
import Testing

/// Issue 11: the YAML layer bounds what a hostile file may cost and reports bad bytes where they are.
@Suite struct YAMLLimitsTests {
    /// Nine levels of ten aliases each: 10^9 nodes if expanded (it took 1.2 GB and was killed before).
    static let aliasBomb =
        "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        + (1..<10).map { i in
            "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n"
        }.joined()

    func syntaxError(_ bytes: [UInt8], limits: YAMLLimits = .configuration) -> YAMLSyntaxError? {
        do {
            _ = try YAMLParser.parse(bytes: bytes, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    @Test func anAliasBombIsRefusedByNodeCount() {
        let error = syntaxError(Array(Self.aliasBomb.utf8))
        #expect(error?.message.contains("more than 100000 nodes") == true, "\(String(describing: error))")
        #expect(error?.mark == YAMLMark(line: 5, column: 45))
    }

    @Test func aliasesWithinTheBoundStillWork() throws {
        let root = try YAMLParser.parse("base: &b {x: 1}\ncopy: *b\n")
        #expect(root?.mappingValue("copy")?.mappingValue("x")?.scalar == "1")
        #expect(root?.mappingValue("copy")?.mark == YAMLMark(line: 2, column: 7))
        #expect(syntaxError(Array("a: *nowhere\n".utf8))?.message.contains("no anchor") == true)
    }

    @Test func deepFlowNestingIsRefusedAtTheLimit() {
        let deep = "gateway: " + String(repeating: "[", count: 40_000) + String(repeating: "]", count: 40_000)
        let error = syntaxError(Array(deep.utf8))
        #expect(error?.message == "YAML nesting deeper than 64 levels")
        #expect(error?.mark == YAMLMark(line: 1, column: 10 + 63))
        let ok = "a: " + String(repeating: "[", count: 63) + String(repeating: "]", count: 63)
        #expect(syntaxError(Array(ok.utf8)) == nil)
    }

    @Test func anOversizedFileIsRefused() {
        let big = Array("# ".utf8) + [UInt8](repeating: 0x78, count: 1 << 20)
        #expect(syntaxError(big)?.message.contains("larger than 1 MiB") == true)
        let profile = [UInt8](repeating: 0x20, count: (256 << 10) + 1)
        #expect(syntaxError(profile, limits: .profile)?.message.contains("larger than 256 KiB") == true)
        #expect(syntaxError(profile, limits: .configuration) == nil)
    }

    @Test func aControlByteIsReportedAtItsLineAndColumn() {
        var text = (1...48).map { "k\($0): v" }.joined(separator: "\n") + "\nk49: abc\u{01}def\n"
        var error = syntaxError(Array(text.utf8))
        #expect(error?.mark == YAMLMark(line: 49, column: 9), "\(String(describing: error))")
        #expect(error?.message.contains("control characters") == true)
        text = "gateway:\n  site: \u{00E9}t\u{00E9}\u{0}x\n"
        error = syntaxError(Array(text.utf8))
        #expect(error?.mark == YAMLMark(line: 2, column: 12), "columns count characters, not bytes")
    }

    @Test func utf16IsNamed() {
        for bytes: [UInt8] in [
            [0xFF, 0xFE, 0x61, 0x00, 0x3A, 0x00], [0xFE, 0xFF, 0x00, 0x61], [0x61, 0x00, 0x3A, 0x00],
        ] {
            let error = syntaxError(bytes)
            #expect(error?.message.contains("UTF-16") == true)
            #expect(error?.message.contains("save it as UTF-8") == true)
            #expect(error?.mark == YAMLMark(line: 1, column: 1))
        }
    }

    @Test func invalidUTF8IsRefusedWithItsPositionNotReplaced() {
        let bytes: [UInt8] = Array("gateway:\n  site: caf".utf8) + [0xE9] + Array("\n".utf8)
        let error = syntaxError(bytes)
        #expect(error?.mark == YAMLMark(line: 2, column: 12))
        #expect(error?.message.contains("invalid UTF-8") == true)
        // Overlong encodings and surrogates are invalid too; a UTF-8 byte order mark is fine.
        #expect(syntaxError([0x61, 0x3A, 0x20, 0xC0, 0xAF]) != nil)
        #expect(syntaxError([0x61, 0x3A, 0x20, 0xED, 0xA0, 0x80]) != nil)
        #expect(syntaxError([0xEF, 0xBB, 0xBF] + Array("a: b\n".utf8)) == nil)
    }

    @Test func aProfileFolderWithABombOrBadIdRefusesOnlyThoseProfiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pantau-yaml-limits-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = """
            id: good
            manufacturer: T
            model: M
            source: test
            points:
              - {name: t, quantity: temperature, table: input, address: 0, type: i16, unit: Cel}
            """
        try good.write(toFile: "\(dir)/good.yaml", atomically: true, encoding: .utf8)
        try good.write(toFile: "\(dir)/renamed.yaml", atomically: true, encoding: .utf8)
        try Self.aliasBomb.write(toFile: "\(dir)/bomb.yaml", atomically: true, encoding: .utf8)
        let library = ProfileLibrary(directories: [dir])
        #expect(library.profiles.keys.sorted() == ["good"])
        #expect(library.problems["bomb"]?.description.contains("more than 100000 nodes") == true)
        let renamed = library.problems["renamed"]?.diagnostics.first
        #expect(renamed?.message.contains("does not match its file name 'renamed.yaml'") == true)
        #expect(renamed?.location.line == 1 && renamed?.location.column == 5, "at the id's value")
    }
}
