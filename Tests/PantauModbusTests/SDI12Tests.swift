import PantauCore
import Testing

@testable import PantauModbus

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct SDI12SpecTests {
    @Test func crcMatchesTheSpecificationsExample() {
        // SDI-12 v1.4 §4.4.12: the response 0+3.14 carries the CRC characters OqZ.
        #expect(SDI12Spec.encodeCRC(SDI12Spec.crc16(bytes("0+3.14"))) == bytes("OqZ"))
        #expect(SDI12Spec.parseData(bytes("0+3.14OqZ"), address: UInt8(ascii: "0"), crc: true) == .success([3.14]))
    }

    @Test func dataResponsesAreCheckedBeforeTheirValuesAreUsed() {
        let zero = UInt8(ascii: "0")
        #expect(SDI12Spec.parseData(bytes("0+1.234-25.1+7"), address: zero, crc: false) == .success([1.234, -25.1, 7]))
        #expect(SDI12Spec.parseData(bytes("0"), address: zero, crc: false) == .success([]))
        guard case .failure(let crc) = SDI12Spec.parseData(bytes("0+3.14OqY"), address: zero, crc: true) else {
            Issue.record("a wrong CRC must fail")
            return
        }
        #expect(crc.fault == .crc)
        guard case .failure(let other) = SDI12Spec.parseData(bytes("1+3.14"), address: zero, crc: false) else {
            Issue.record("another address must fail")
            return
        }
        #expect(other.fault == .shape)
        guard case .failure = SDI12Spec.parseData(bytes("0+3.1x4"), address: zero, crc: false) else {
            Issue.record("garbage must fail")
            return
        }
    }

    @Test func measureRepliesAndValueFormatting() {
        let zero = UInt8(ascii: "0")
        #expect(SDI12Spec.parseMeasureReply(bytes("00012"), address: zero, concurrent: false)! == (1, 2))
        #expect(SDI12Spec.parseMeasureReply(bytes("000512"), address: zero, concurrent: true)! == (5, 12))
        #expect(SDI12Spec.parseMeasureReply(bytes("00012"), address: zero, concurrent: true) == nil)
        #expect(SDI12Spec.format(1.25) == "+1.25")
        #expect(SDI12Spec.format(-0.052) == "-0.052")
        #expect(SDI12Spec.format(7) == "+7")
        #expect(SDI12Spec.isAddress(48) && SDI12Spec.isAddress(122) && !SDI12Spec.isAddress(1))
    }
}

@Suite struct SDI12TransportTests {
    private func transport(_ link: ScriptedLink, _ spec: SDI12Spec, unit: Int = 48) throws(ModbusError)
        -> SDI12Transport
    {
        let t = SDI12Transport(settings: SDI12Settings(device: "x", sensors: [unit: spec]), link: link, bus: "sdi")
        t.pause = { _ in }
        t.setResponseTimeout(ms: 100)
        try t.setUnit(unit)
        return t
    }

    private let all = ReadRequest(table: .input, address: 0, count: 8)

    @Test func measureWaitsForTheServiceRequestThenCollectsTheData() throws {
        let link = ScriptedLink(answers: [
            [bytes("00012\r\n"), bytes("0\r\n")],  // 1 s, 2 values; then the service request
            [bytes("0+1.234"), bytes("+25.1DDi\r\n")],
        ])
        let t = try transport(link, SDI12Spec(command: .MC, values: 2))
        let words = try t.read(all)
        #expect(SDI12Spec.registers([1.234, 25.1]).sorted(by: { $0.key < $1.key }).map(\.value) == words)
        #expect(link.written == [bytes("0MC!"), bytes("0D0!")])
        #expect(link.breaks == 2)
    }

    @Test func concurrentMeasurementReadsSeveralDataLines() throws {
        let link = ScriptedLink(answers: [[bytes("a00003\r\n")], [bytes("a+1+2\r\n")], [bytes("a+3\r\n")]])
        let t = try transport(link, SDI12Spec(command: .C, values: 3), unit: 97)
        let words = try t.read(ReadRequest(table: .input, address: 8, count: 4))
        #expect(Double(bitPattern: words.reduce(UInt64(0)) { $0 << 16 | UInt64($1) }) == 3)
        #expect(link.written == [bytes("aC!"), bytes("aD0!"), bytes("aD1!")])
    }

    @Test func aBadCRCIsACRCErrorAndNoData() throws {
        let link = ScriptedLink(answers: [[bytes("00002\r\n")], [bytes("0+1.234+25.1DDj\r\n")]])
        let t = try transport(link, SDI12Spec(command: .MC, values: 2))
        do {
            _ = try t.read(all)
            Issue.record("a bad CRC must not give data")
        } catch {
            #expect(error.code == .badCRC)
            #expect(error.unit == 48)
        }
    }

    @Test func aTruncatedResponseTimesOutAndSaysSo() throws {
        let link = ScriptedLink(answers: [[bytes("00002\r\n")], [bytes("0+1.23")]])
        let t = try transport(link, SDI12Spec(command: .M, values: 2))
        do {
            _ = try t.read(all)
            Issue.record("a truncated response must not give data")
        } catch {
            #expect(error.code == .timeout)
            #expect(error.message.contains("truncated answer to '0D0!'"))
        }
    }

    @Test func tooFewValuesOrAnotherCountIsBadData() throws {
        let short = ScriptedLink(answers: [[bytes("00002\r\n")], [bytes("0+1.5\r\n")], [bytes("0\r\n")]])
        do {
            _ = try transport(short, SDI12Spec(command: .M, values: 2)).read(all)
            Issue.record("one value of two must fail")
        } catch {
            #expect(error.code == .badData)
            #expect(error.message.contains("gave 1 of 2 values"))
        }
        let count = ScriptedLink(answers: [[bytes("00003\r\n")]])
        do {
            _ = try transport(count, SDI12Spec(command: .M, values: 2)).read(all)
        } catch {
            #expect(error.message.contains("announces 3 values"))
        }
    }

    @Test func anEchoOfTheCommandIsSkippedAndSilenceTimesOut() throws {
        let echo = ScriptedLink(answers: [[bytes("0M!00002\r\n")], [bytes("0D0!0+1+2\r\n")]])
        let t = try transport(echo, SDI12Spec(command: .M, values: 2))
        #expect(try t.read(ReadRequest(table: .input, address: 4, count: 4)) == [0x4000, 0, 0, 0])  // 2.0
        #expect(t.ignoredLines == 2)
        let silent = try transport(ScriptedLink(), SDI12Spec(command: .M, values: 2))
        do {
            _ = try silent.read(all)
        } catch {
            #expect(error.code == .timeout)
            #expect(error.message.contains("no answer to '0M!'"))
        }
    }
}

@Suite struct SDI12DiscoveryTests {
    @Test func addressQueryAcknowledgeAndIdentification() throws {
        let link = ScriptedLink(answers: [
            [bytes("0\r\n")], [bytes("0\r\n")], [], [bytes("013OTTHACHPLS000100123456\r\n")],
        ])
        let t = SDI12Transport(settings: SDI12Settings(device: "x"), link: link, bus: "sdi")
        t.pause = { _ in }
        t.setResponseTimeout(ms: 50)
        #expect(try t.queryAddress() == UInt8(ascii: "0"))
        #expect(try t.acknowledges(unit: 48))
        #expect(try !t.acknowledges(unit: 49))
        #expect(try t.identification(unit: 48) == "13OTTHACHPLS000100123456")
        #expect(link.written == [bytes("?!"), bytes("0!"), bytes("1!"), bytes("0I!")])
    }

    @Test func refusesEveryWrite() {
        let link = ScriptedLink(answers: [])
        let t = SDI12Transport(settings: SDI12Settings(device: "x"), link: link, bus: "sdi")
        expectWritesRefused(t, "SDI-12 sensors take no Modbus writes", bus: "sdi")
        #expect(link.written.isEmpty)
    }
}
