import PantauCore
import Testing

@testable import PantauJournal

@Suite("Delivery memory: live data and aged data (backlog) picked apart")
struct DeliveryMemoryAgeTests {
    /// Entries 1...n acquired at the given times (data lane).
    private func memory(_ times: [UnixMillis]) -> DeliveryMemory {
        var memory = DeliveryMemory()
        for (index, time) in times.enumerated() { memory.insert(seq: Int64(index + 1), message(.telemetry, at: time)) }
        return memory
    }

    @Test("live and aged candidates split by the cutoff, each in sequence order")
    func split() {
        var memory = memory([100, 500, 200, 600])
        #expect(memory.liveCandidates(limit: 10, cutoff: 300) == [2, 4])
        #expect(memory.agedCandidates(limit: 10, cutoff: 300) == [1, 3])
        // Candidates are not leased: asked again, the same answers.
        #expect(memory.liveCandidates(limit: 10, cutoff: 300) == [2, 4])
        #expect(memory.agedCandidates(limit: 10, cutoff: 300) == [1, 3])
        #expect(memory.hasOffers(.data))
    }

    @Test("aged entries a live walk did not reach are still given in sequence order")
    func agedOrderAcrossBothQueues() {
        var memory = memory([100, 500, 200, 600, 150])
        // The walk stops after one live entry: 1 is aged, 3 and 5 are not reached yet.
        #expect(memory.liveCandidates(limit: 1, cutoff: 300) == [2])
        #expect(memory.agedCandidates(limit: 2, cutoff: 300) == [1, 3])
        #expect(memory.agedCandidates(limit: 10, cutoff: 300) == [1, 3, 5])
    }

    @Test("an entry that waits past the live window becomes backlog")
    func agesWhileWaiting() {
        var memory = memory([1_000])
        #expect(memory.liveCandidates(limit: 10, cutoff: 900) == [1])
        #expect(memory.liveCandidates(limit: 10, cutoff: 1_100).isEmpty)
        #expect(memory.agedCandidates(limit: 10, cutoff: 1_100) == [1])
    }

    @Test("leased, released and acknowledged aged entries")
    func leaseReleaseAcknowledge() {
        var memory = memory([100, 200, 300])
        #expect(memory.liveCandidates(limit: 10, cutoff: 1_000).isEmpty)
        memory.markLeased([1, 2])
        #expect(memory.agedCandidates(limit: 10, cutoff: 1_000) == [3])
        #expect(memory.release([2]).isEmpty)
        #expect(memory.agedCandidates(limit: 10, cutoff: 1_000) == [2, 3])
        #expect(memory.acknowledge(3) == .neverWritten)
        #expect(memory.agedCandidates(limit: 10, cutoff: 1_000) == [2])
        memory.markLeased([2])
        #expect(memory.agedCandidates(limit: 10, cutoff: 1_000).isEmpty)
        #expect(!memory.hasOffers(.data))
    }

    @Test("a corrected time makes an aged entry live again")
    func rewriteRestores() {
        var memory = memory([100, 200])
        #expect(memory.liveCandidates(limit: 10, cutoff: 1_000).isEmpty)
        let changed = memory.rewrite { message in
            var moved = message
            moved.acquiredAt += 5_000
            return moved
        }
        #expect(changed == 2)
        #expect(memory.liveCandidates(limit: 10, cutoff: 1_000) == [1, 2])
        #expect(memory.agedCandidates(limit: 10, cutoff: 1_000).isEmpty)
    }

    @Test("eviction still finds written entries that were aged")
    func evictAged() {
        var memory = memory([100, 200, 300])
        #expect(memory.takeUnwritten().map(\.seq) == [1, 2, 3])
        memory.written([1, 2, 3])
        #expect(memory.liveCandidates(limit: 10, cutoff: 1_000).isEmpty)
        #expect(memory.evict(keeping: 1) == [.data: [1, 2]])
        #expect(memory.agedCandidates(limit: 10, cutoff: 1_000) == [3])
    }
}
