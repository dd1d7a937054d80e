import Logging
import PantauCore
import Testing

@testable import PantauGateway
@testable import PantauSparkplug

/// The pipeline tells the Sparkplug edge of the clock (which corrects unsynced DDATA when it sends them) from a poll
/// only when the clock changed: a synchronisation, a step, another boot; the tick tells it every second.
@Suite struct SparkplugClockTests {
    let board = ClockTrustBoard()
    let sink = ClockTrustSink()
    let config = ClockTrustTests().config(.mark)
    let edge: SparkplugEdge
    let pipeline: ReadingPipeline

    init() {
        edge = SparkplugEdge(
            topics: SparkplugTopics(group: "g", edgeNode: "e"), devices: config.devices, savedBdSeq: nil,
            saveBdSeq: { _ in })
        pipeline = ReadingPipeline(
            config: config, sink: sink, clock: board, logger: Logger(label: "t"), onPollInterval: { _, _ in },
            sparkplug: edge)
    }

    /// A poll at `boottime` (ms since boot), handled without a tick.
    func poll(_ value: Double, atBoottime boottime: Int64) {
        board.set { $0.boottime = boottime }
        pipeline.handle(ClockTrustTests.poll(value, at: board.now()))
    }

    /// The first DDATA as the edge would send it now: (metric timestamp, `tq`).
    func firstDDATASent() throws -> (UInt64, String?) {
        let ddata = try #require(sink.all.first { $0.topic == "spBv1.0/g/DDATA/e/river" })
        let sent = try SpBPayload(serializedBytes: edge.frame(ddata.body, topic: ddata.topic, historical: true))
        let metric = try #require(sent.metrics.first)
        let tq = metric.properties.keys.firstIndex(of: "tq").map { metric.properties.values[$0].stringValue }
        return (metric.timestamp, tq)
    }

    @Test("a synchronisation seen by a poll reaches the edge: the DDATA held from before goes out corrected")
    func synchronisationReachesTheEdge() throws {
        poll(101, atBoottime: 60_000)
        #expect(try firstDDATASent() == (60_000, "unsynced"))
        board.synchronise(atBoottime: 120_000)
        poll(102, atBoottime: 120_000)
        #expect(try firstDDATASent() == (UInt64(ClockTrustTests.trueBoot + 60_000), "corrected"))
    }

    @Test("a poll leaves the edge's clock alone while the clock is unchanged, and tells it of a step")
    func onlyOnAChange() throws {
        poll(101, atBoottime: 60_000)
        board.synchronise(atBoottime: 120_000)
        poll(102, atBoottime: 120_000)
        // Told something else behind the pipeline's back: a poll on an unchanged clock does not take the edge's
        // lock to tell it again (the tick would, within a second).
        edge.observeClock(bootId: "boot-1", syncedOffset: nil)
        poll(103, atBoottime: 180_000)
        #expect(try firstDDATASent() == (60_000, "unsynced"))
        // The synchronised wall clock steps 5 s ahead: news, told by the next poll.
        board.set { $0.wallOffset += 5_000 }
        poll(104, atBoottime: 240_000)
        #expect(try firstDDATASent() == (UInt64(ClockTrustTests.trueBoot + 5_000 + 60_000), "corrected"))
        // And the tick tells it every time.
        edge.observeClock(bootId: "boot-1", syncedOffset: nil)
        pipeline.tick()
        #expect(try firstDDATASent() == (UInt64(ClockTrustTests.trueBoot + 5_000 + 60_000), "corrected"))
    }

    @Test("jitter of the synchronised offset is no news; a step, the synchronisation and another boot are")
    func news() {
        let synced = ReadingPipeline.EdgeClock(bootId: "b", syncedOffset: 1_000_000)
        #expect(!synced.differs(from: .init(bootId: "b", syncedOffset: 1_001_000)))
        #expect(!synced.differs(from: .init(bootId: "b", syncedOffset: 999_000)))
        #expect(synced.differs(from: .init(bootId: "b", syncedOffset: 1_001_001)))
        #expect(synced.differs(from: .init(bootId: "b", syncedOffset: nil)))
        #expect(synced.differs(from: .init(bootId: "c", syncedOffset: 1_000_000)))
        let unsynced = ReadingPipeline.EdgeClock(bootId: "b", syncedOffset: nil)
        #expect(!unsynced.differs(from: .init(bootId: "b", syncedOffset: nil)))
        #expect(unsynced.differs(from: synced))
    }
}
