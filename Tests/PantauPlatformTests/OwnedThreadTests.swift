import Foundation
import PantauPlatform
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct OwnedThreadTests {
    /// Issue 17: our threads reserve 1 MiB of stack, not the process's `ulimit -s` (8 MiB by default). The
    /// thread's stack is the mapping in /proc/self/maps that holds one of its local variables.
    @Test func threadsGetTheStackSizeWeAskFor() throws {
        let seen = Mutex<UInt?>(nil)
        let thread = OwnedThread {
            var local = 0
            let address = withUnsafeMutablePointer(to: &local) { UInt(bitPattern: $0) }
            let maps = (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)) ?? ""
            for line in maps.split(separator: "\n") {
                let range = line.split(separator: " ")[0].split(separator: "-").compactMap { UInt($0, radix: 16) }
                if range.count == 2, range[0] <= address, address < range[1] {
                    seen.withLock { $0 = range[1] - range[0] }
                }
            }
            _ = local
        }
        thread.join()
        let size = try #require(seen.withLock { $0 })
        #expect(OwnedThread.stackBytes == 1 << 20)
        // glibc puts the guard page inside the reservation (a mapping of its own), and the static TLS at the top.
        #expect(size <= UInt(OwnedThread.stackBytes))
        #expect(size > UInt(OwnedThread.stackBytes) / 2)
    }

    /// The body runs, and `join` waits for it: a later join returns at once.
    @Test func joinWaitsForTheBody() {
        let ran = Mutex(false)
        let thread = OwnedThread {
            sleepMillis(20)
            ran.withLock { $0 = true }
        }
        thread.join()
        #expect(ran.withLock { $0 })
        thread.join()
    }

    /// Only the first of `detach` and `join` gets the thread: a join after a detach returns at once, while the body
    /// is still running (it waits up to 10 s for the test to let it finish).
    @Test func joinAfterDetachDoesNotWait() {
        let release = Mutex(false)
        let finished = Mutex(false)
        let thread = OwnedThread {
            for _ in 0..<1000 where !release.withLock({ $0 }) { sleepMillis(10) }
            finished.withLock { $0 = true }
        }
        thread.detach()
        thread.join()
        #expect(!finished.withLock { $0 })
        release.withLock { $0 = true }
    }
}
