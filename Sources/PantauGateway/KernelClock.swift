internal import CTimex
import Glibc
import PantauCore
import PantauPlatform

/// The system's clocks with their synchronisation state: `CLOCK_REALTIME`, `CLOCK_MONOTONIC`, `CLOCK_BOOTTIME`,
/// adjtimex(2) (`STA_UNSYNC`, `maxerror`) and systemd-timesyncd's flag file.
public struct KernelClock: GatewayClock {
    private let system = SystemClock()
    /// The test-only clock of `PANTAU_TEST_CLOCK`, when set.
    private let testFile: String?

    /// systemd-timesyncd creates this file once it has synchronised the clock.
    public static let timesyncdFlag = "/run/systemd/timesync/synchronized"

    public init() {
        testFile = FileSystem.environment("PANTAU_TEST_CLOCK")
    }

    public func now() -> UnixMillis { system.now() + (testState()?.offset ?? 0) }
    public func monotonicNanos() -> UInt64 { system.monotonicNanos() }

    public func clockSample() -> ClockSample {
        let boottime = Self.boottimeMs()
        // The test clock's file is read once per sample: its wall offset and its synchronisation belong together.
        if let test = testState() {
            return ClockSample(
                wall: system.now() + test.offset, boottimeMs: boottime, synced: test.synced, maxErrorMs: nil,
                bootId: test.bootId ?? Self.bootId)
        }
        let wall = system.now()
        var tx = timex()
        let state = adjtimex(&tx)
        let kernelSynced = state >= 0 && state != TIME_ERROR && (tx.status & Int32(STA_UNSYNC)) == 0
        let flag = access(Self.timesyncdFlag, F_OK) == 0
        return ClockSample(
            wall: wall, boottimeMs: boottime, synced: kernelSynced || flag || Self.setFromRTC,
            maxErrorMs: state >= 0 ? Int64(tx.maxerror) / 1000 : nil, bootId: Self.bootId)
    }

    /// Two `clock_gettime` calls (vDSO, no system call); adjtimex and the timesyncd flag stay as last sampled.
    public func quickSample(after last: ClockSample) -> ClockSample {
        var sample = last
        sample.boottimeMs = Self.boottimeMs()
        sample.wall = now()
        return sample
    }

    /// Test only (`PANTAU_TEST_CLOCK=<file>`, never set in the field): the file holds `<wall offset ms> <synced 0|1>`
    /// and optionally a boot id standing in for this boot's, read on every call, so a test can start the gateway at
    /// 1970, unsynchronised, synchronise it later, or reboot it. libfaketime cannot do this for a Swift binary.
    private func testState() -> (offset: Int64, synced: Bool, bootId: String?)? {
        guard let path = testFile, let text = try? FileSystem.readText(path) else { return nil }
        let parts = text.prefix { $0 != "\n" }.split(separator: " ")
        guard parts.count == 2 || parts.count == 3, let offset = Int64(parts[0]) else { return nil }
        return (offset, parts[1] == "1", parts.count == 3 ? String(parts[2]) : nil)
    }

    /// `CLOCK_BOOTTIME` in milliseconds: keeps counting through a suspend, starts at 0 each boot.
    public static func boottimeMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// The kernel set the system clock from a battery-backed RTC at boot (`hctosys`): a board with an RTC HAT but no
    /// time service has a trustworthy date, though nothing disciplines the clock.
    public static let setFromRTC: Bool = {
        guard let f = fopen("/sys/class/rtc/rtc0/hctosys", "r") else { return false }
        defer { fclose(f) }
        return fgetc(f) == Int32(UInt8(ascii: "1"))
    }()

    /// This boot's id (`/proc/sys/kernel/random/boot_id`), read once.
    public static let bootId: String =
        (try? FileSystem.readText("/proc/sys/kernel/random/boot_id"))?.trimmedWhitespace() ?? ""
}
