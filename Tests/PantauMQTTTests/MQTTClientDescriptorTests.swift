import Testing

@testable import PantauMQTT

#if canImport(Glibc)
    import Glibc
#endif

/// libmosquitto 2.0.11 zeroes its struct, then returns early on a bad client id before marking its socketpair
/// unset, and `mosquitto_new` destroys the half-made object: it closes descriptor 0, which may be anybody's (the
/// Modbus socket when stdin was closed). The wrapper must refuse such ids before libmosquitto sees them.
@Suite("MQTTClient owns no descriptor it did not open", .serialized)
struct MQTTClientDescriptorTests {
    /// Puts a pipe on descriptor 0 while `body` runs and says whether it is still open afterwards.
    private func descriptorZeroSurvives(_ body: () -> Void) -> Bool {
        let saved = dup(0)
        var ends: [Int32] = [-1, -1]
        guard saved >= 0, pipe(&ends) == 0 else { return false }
        dup2(ends[0], 0)
        close(ends[0])
        body()
        // The pipe's write end reaches descriptor 0 only if 0 is still the pipe.
        let written = write(ends[1], "x", 1)
        var byte: UInt8 = 0
        let alive = fcntl(0, F_GETFD) != -1 && written == 1 && read(0, &byte, 1) == 1 && byte == UInt8(ascii: "x")
        close(ends[1])
        dup2(saved, 0)
        close(saved)
        return alive
    }

    static let invalidIds = [
        "70000 bytes": String(repeating: "g", count: 70_000), "empty": "", "control": "bad\u{01}id",
        "nul": "nul\u{0}id",
    ]

    @Test("an invalid client id is refused and descriptor 0 stays open", arguments: invalidIds.keys.sorted())
    func invalidClientId(kind: String) {
        let id = Self.invalidIds[kind]!
        var refused: MQTTError?
        let alive = descriptorZeroSurvives {
            do {
                _ = try MQTTClient(clientId: id)
            } catch {
                refused = error as? MQTTError
            }
        }
        #expect(alive)
        #expect(refused?.code == .other)
        #expect(refused?.message.contains("client id") == true)
    }

    @Test("a valid long client id still works")
    func longValidId() throws {
        let alive = descriptorZeroSurvives {
            #expect((try? MQTTClient(clientId: String(repeating: "g", count: 1000))) != nil)
        }
        #expect(alive)
    }
}
