import Foundation
import PantauCore
import Testing

@testable import PantauJournal

/// A small tmpfs, so the disk really runs out (ENOSPC), not only SQLite's page cap. Needs root or CAP_SYS_ADMIN.
final class TmpfsMount {
    let path: String

    /// Whether this machine lets the tests mount a tmpfs (probed once).
    static let available: Bool = {
        guard let probe = try? TmpfsMount(kibibytes: 64) else { return false }
        _ = probe
        return true
    }()

    init?(kibibytes: Int) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pantau-tmpfs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        path = folder.path
        guard Self.run(["mount", "-t", "tmpfs", "-o", "size=\(kibibytes)k", "tmpfs", path]) else {
            try? FileManager.default.removeItem(atPath: path)
            return nil
        }
    }

    func resize(kibibytes: Int) -> Bool { Self.run(["mount", "-o", "remount,size=\(kibibytes)k", path]) }

    deinit {
        _ = Self.run(["umount", "-l", path])
        try? FileManager.default.removeItem(atPath: path)
    }

    private static func run(_ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0
        } catch {
            return false
        }
    }
}

@Suite("Journal on a disk that really fills up")
struct JournalRealDiskTests {
    @Test(
        "ENOSPC on a tmpfs: no crash, alerts kept (in memory when nothing is left to drop), recovery with space",
        .enabled(if: TmpfsMount.available, "mounting a tmpfs needs root or CAP_SYS_ADMIN; covered by max_page_count"))
    func tmpfsFull() throws {
        let mount = try #require(try TmpfsMount(kibibytes: 1024))
        let clock = TestClock()
        let config = JournalConfig(path: mount.path + "/journal.sqlite", commitInterval: .minutes(60))
        let journal = try Journal(
            config: config, clock: clock, logger: quietLogger, memoryLimit: 1_000_000, diskReserve: 256 << 10)
        defer { journal.close() }
        let body = "{\"v\":\"" + String(repeating: "z", count: 1000) + "\"}"
        var alerts = 0
        var telemetry = 0
        var sawDiskFull = false
        var cyclesAfterFull = 0
        for cycle in 0..<5000 where cyclesAfterFull < 50 {
            var group = ["aq-01", "wl-02", "rg-03"].map { message(.telemetry, device: $0, at: clock.now(), body: body) }
            telemetry += group.count
            if cycle % 5 == 0 {
                group.append(message(.alert, device: "wl-02", at: clock.now(), body: body))
                alerts += 1
            }
            journal.append(group)
            try? journal.flush()
            sawDiskFull = sawDiskFull || journal.stats().diskFull
            if sawDiskFull { cyclesAfterFull += 1 }
            clock.advance(.seconds(10))
        }
        #expect(sawDiskFull)
        #expect(journal.stats().dropsByKind[.telemetry, default: 0] > 0)

        // Alerts only: once no telemetry is left to drop, commits fail and the alerts wait in memory.
        var failures = 0
        for _ in 0..<3000 where failures < 3 {
            journal.append([message(.alert, device: "wl-02", at: clock.now(), body: body)])
            alerts += 1
            do { try journal.flush() } catch { failures += 1 }
        }
        #expect(failures == 3)
        #expect(journal.stats().queued > 0)

        #expect(mount.resize(kibibytes: 16 * 1024))
        try journal.flush()
        let stats = journal.stats()
        #expect(stats.queued == 0)
        #expect(stats.lastCommitError == nil)
        #expect(stats.pendingByKind[.alert] == alerts)
        #expect(stats.dropsByKind[.alert] == nil)
        #expect(Int64(stats.pendingByKind[.telemetry] ?? 0) + stats.dropsByKind[.telemetry, default: 0] == telemetry)
    }
}
