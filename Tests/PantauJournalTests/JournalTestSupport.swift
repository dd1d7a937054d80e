import Foundation
import Logging
import PantauCore
import Synchronization
import Testing

@testable import PantauJournal

/// A clock the test moves by hand.
final class TestClock: GatewayClock {
    private let millis: Mutex<Int64>

    init(_ start: UnixMillis = 1_790_000_000_000) { millis = Mutex(start) }

    func now() -> UnixMillis { millis.withLock { $0 } }
    func monotonicNanos() -> UInt64 { UInt64(millis.withLock { $0 }) * 1_000_000 }
    func advance(_ interval: Interval) { millis.withLock { $0 += interval.milliseconds } }
}

/// A fresh folder under the system temp dir, removed at deinit.
final class TempFolder {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("pantau-journal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    var journalPath: String { path + "/journal.sqlite" }

    func files() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

let quietLogger = Logger(label: "journal-test") { _ in SwiftLogNoOpLogHandler() }

/// A journal config for tests: commits only on flush unless the test says otherwise.
func testConfig(
    _ folder: TempFolder, durability: JournalConfig.Durability = .full, maxBytes: Int64 = 1 << 30,
    maxAge: Interval = .minutes(7 * 24 * 60), commitInterval: Interval = .minutes(60), backlogShare: Double = 0.5
) -> JournalConfig {
    JournalConfig(
        path: folder.journalPath, durability: durability, maxBytes: maxBytes, maxAge: maxAge,
        commitInterval: commitInterval, backlogShare: backlogShare)
}

func message(
    _ kind: MessageKind, device: String? = "aq-01", at time: UnixMillis, body: String = "{\"v\":1}"
) -> OutboundMessage {
    OutboundMessage(
        kind: kind, topic: "pantau/site/gw/\(kind.name)/\(device ?? "gw")", body: Array(body.utf8),
        retain: kind == .alert, device: device, acquiredAt: time)
}

extension Journal {
    /// Appends and commits, failing the test if the commit fails.
    func commit(_ messages: [OutboundMessage]) throws {
        append(messages)
        try flush()
    }
}

extension Array where Element == Delivery {
    var seqs: [Int64] { map(\.record.seq) }
}
