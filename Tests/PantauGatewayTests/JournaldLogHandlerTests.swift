import Logging
import PantauCore
import Synchronization
import Testing

@testable import PantauGateway

/// Collects what the handler would have written to stderr.
private final class LineSink: Sendable {
    private let lines = Mutex<[String]>([])
    var written: [String] { lines.withLock { $0 } }
    func write(_ line: String) { lines.withLock { $0.append(line) } }
}

private struct FixedClock: GatewayClock {
    let millis: UnixMillis
    func now() -> UnixMillis { millis }
    func monotonicNanos() -> UInt64 { 0 }
}

@Suite("JournaldLogHandler")
struct JournaldLogHandlerTests {
    @Test(
        "every level carries its sd-daemon priority",
        arguments: [
            (Logger.Level.trace, "<7>"), (.debug, "<7>"), (.info, "<6>"), (.notice, "<5>"), (.warning, "<4>"),
            (.error, "<3>"), (.critical, "<2>"),
        ])
    func priorityPrefix(level: Logger.Level, prefix: String) {
        let line = JournaldLogHandler.format(
            style: .journald, level: level, label: "pantau", message: "m", metadata: [:])
        #expect(line == "\(prefix)[pantau] m\n")
    }

    @Test("metadata follows as sorted key=value pairs, quoted only when needed")
    func metadataPairs() {
        let line = JournaldLogHandler.format(
            style: .journald, level: .warning, label: "pantau.modbus", message: "device timed out",
            metadata: ["unit": "7", "bus": "rs485-1", "error": "Connection timed out", "note": "", "eq": "a=b"])
        #expect(
            line == "<4>[pantau.modbus] device timed out bus=rs485-1 eq=\"a=b\" error=\"Connection timed out\" "
                + "note=\"\" unit=7\n")
    }

    @Test("line breaks and quotes cannot split one message into several journal entries")
    func oneLinePerMessage() {
        let line = JournaldLogHandler.format(
            style: .journald, level: .error, label: "pantau", message: "config error\n  at line 3",
            metadata: ["detail": "say \"hi\"\nback\\slash"])
        #expect(line == "<3>[pantau] config error\\n  at line 3 detail=\"say \\\"hi\\\"\\nback\\\\slash\"\n")
        #expect(line.filter { $0 == "\n" }.count == 1)
    }

    @Test(
        "plain style puts a UTC timestamp and the level name first",
        arguments: [
            (UnixMillis(1_769_846_400_250), "2026-01-31T08:00:00.250Z"),
            (UnixMillis(0), "1970-01-01T00:00:00.000Z"),
            (UnixMillis(-1), "1969-12-31T23:59:59.999Z"),
        ])
    func plainStyle(millis: UnixMillis, stamp: String) {
        let line = JournaldLogHandler.format(
            style: .plain, level: .notice, label: "pantau", message: "started", metadata: ["buses": "2"],
            timestamp: millis)
        #expect(line == "\(stamp) notice [pantau] started buses=2\n")
    }

    @Test("the handler merges its own, provided and per-message metadata, the message winning")
    func handlerMergesMetadata() {
        let sink = LineSink()
        let provider = Logger.MetadataProvider { ["site": "jakarta-utara", "gw": "provided"] }
        var logger = Logger(label: "pantau.gateway") { label in
            JournaldLogHandler(
                label: label, style: .journald, logLevel: .info, metadataProvider: provider, write: sink.write)
        }
        logger[metadataKey: "gw"] = "gw-01"
        logger.debug("below the level, dropped")
        logger.info("publishing", metadata: ["gw": "override", "topic": "pantau/x/y/status"])
        #expect(
            sink.written == ["<6>[pantau.gateway] publishing gw=override site=jakarta-utara topic=pantau/x/y/status\n"])
    }

    @Test("plain handler output uses the injected clock")
    func handlerPlainUsesClock() {
        let sink = LineSink()
        let logger = Logger(label: "pantau") { label in
            JournaldLogHandler(
                label: label, style: .plain, clock: FixedClock(millis: 1_769_846_400_250), write: sink.write)
        }
        logger.warning("broker unreachable", metadata: ["host": "127.0.0.1"])
        #expect(sink.written == ["2026-01-31T08:00:00.250Z warning [pantau] broker unreachable host=127.0.0.1\n"])
    }

    @Test(
        "JOURNAL_STREAM must name stderr's device and inode",
        arguments: [
            ("8:1234", true), ("8:1235", false), ("9:1234", false), ("8", false), ("8:1234:5", false),
            ("x:1234", false), ("", false),
        ])
    func journalStreamMatching(value: String, matches: Bool) {
        #expect(JournaldLogHandler.Style.journalStream(value, matchesDevice: 8, inode: 1234) == matches)
    }

    @Test("without JOURNAL_STREAM the terminal style is chosen")
    func detectWithoutJournal() {
        #expect(JournaldLogHandler.Style.detect { _ in nil } == .plain)
        #expect(JournaldLogHandler.Style.detect { _ in "0:0" } == .plain)
    }
}
