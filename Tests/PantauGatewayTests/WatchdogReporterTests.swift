import Logging
import PantauCore
import Synchronization
import Testing

@testable import PantauGateway

/// Issue 19.4: the stall is reported once, STATUS=stalled is replaced by the running summary when every worker
/// progresses again, and pings resume; a bus thread inside a bounded read is not stalled before its deadline.
@Suite("Watchdog reporter")
struct WatchdogReporterTests {
    @Test("stalled once, then the summary replaces STATUS=stalled and pings resume")
    func stallThenRecovery() throws {
        let listener = try NotifySocketListener()
        let notifier = SystemdNotifier(socketPath: listener.notifySocket)
        let reporter = WatchdogReporter(notifier: notifier, logger: Logger(label: "test")) { "polling 1 device" }
        let stalled = WatchdogVerdict.stalled([StalledProbe(name: "bus tcp-1", silentNanos: 21_000_000_000)])
        var previous = reporter.report(.healthy, after: .healthy)
        #expect(try listener.receive() == "WATCHDOG=1")
        previous = reporter.report(stalled, after: previous)
        #expect(try listener.receive() == "STATUS=stalled: bus tcp-1")
        previous = reporter.report(stalled, after: previous)
        #expect(listener.isEmpty(), "a continuing stall is not reported again")
        _ = reporter.report(.healthy, after: previous)
        #expect(try listener.receive() == "STATUS=polling 1 device")
        #expect(try listener.receive() == "WATCHDOG=1")
    }

    @Test("a probe reading max(last progress, busy-until) is healthy inside its read, stalled past the deadline")
    func boundedReadIsProgress() {
        final class Clock: GatewayClock {
            let nanos = Atomic<UInt64>(0)
            func now() -> UnixMillis { Int64(nanos.load(ordering: .relaxed) / 1_000_000) }
            func monotonicNanos() -> UInt64 { nanos.load(ordering: .relaxed) }
        }
        let clock = Clock()
        let second: UInt64 = 1_000_000_000
        // The last beat at 0 s; a read of timeout 75 s (+1 s) starts at 0 s: busy until 76 s.
        let busyUntil = 76 * second
        let probe = ProgressProbe(name: "bus slow") { max(0, busyUntil) }
        let supervisor = WatchdogSupervisor(probes: [probe], stallLimit: .seconds(20), clock: clock)
        for at: UInt64 in [10, 60, 75, 95] {
            clock.nanos.store(at * second, ordering: .relaxed)
            #expect(supervisor.verdict() == .healthy, "at \(at) s")
        }
        clock.nanos.store(97 * second, ordering: .relaxed)
        #expect(supervisor.verdict().stalledNames == ["bus slow"])
    }
}
