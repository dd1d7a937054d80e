import FoundationEssentials
import Logging
import PantauCore
import PantauSparkplug
import Synchronization

/// Turns what the bus threads acquire into queued messages: telemetry, availability, and the local intelligence
/// (window aggregates, ISPU/AQI, flood alerts, rain). The message sink is its only output; nothing here touches the
/// network.
///
/// No lock is shared on the hot path: each device's state sits behind a lock of its own (`DeviceSlot`), taken only
/// by the bus thread that polls the device and by the once-a-second tick; the device directory is read under a short
/// lock that is never held while encoding, logging or queueing.
public final class ReadingPipeline: Sendable {
    private let sink: MessageSink
    private let clock: GatewayClock
    private let logger: Logger
    private let directory: Mutex<Directory>
    /// Called when an alert level asks for a different poll interval (flood alerts poll faster as water rises).
    private let onPollInterval: @Sendable (_ device: String, _ interval: Interval) -> Void
    /// With `mqtt.format: sparkplug`, telemetry is the edge node's DDATA.
    private let sparkplug: SparkplugEdge?
    /// The clock's state, and how much telemetry was held back while it is unsynchronised (`time.unsynced: hold`).
    private let time: Mutex<TimeState>

    /// What the pipeline knows about time (issue 14).
    struct TimeState {
        var keeper = TimeKeeper()
        var policy: UnsyncedTimePolicy
        /// Polls held (journaled, `tq` held) by this process since the clock last synchronised.
        var held = 0
        /// Always 0 since held telemetry is journaled: the journal's bounds and drop counters apply to it.
        var overflowed = 0
        /// Polls this process held that the synchronisation released (the journal corrects and publishes them).
        var released = 0
        /// Set when the clock synchronised after running unsynchronised: a message stamped before this time (a
        /// window that closed at the jump, say) was stamped on the unsynchronised timeline and is marked.
        var untrustedBefore: UnixMillis?
        /// The last full sample (once a second, from `tick`): the hot path takes its synchronisation state from it
        /// instead of asking the kernel (adjtimex, the timesyncd flag file) on every poll.
        var lastSample: ClockSample?
        /// What the journal should correct (`takeTimeCorrection`): set at the first look at the clock and at each
        /// synchronisation.
        var correction: TimeCorrectionRequest?
        /// The timeline's offset before the last synchronisation: what a message still marked `unsynced` after it
        /// (a window closed at the jump) was stamped on.
        var unsyncedOffset: Int64?
        /// The unsynchronised timeline a previous process of this boot saved (`restore`), taken up at the first look.
        var resume: SavedClock?
        var looked = false
        /// Every move of the timeline this process saw, in order: each device's intelligence follows those it has
        /// not followed yet (`DeviceIntelligence.followed`) before it takes a reading or lets time pass.
        var moves: [TimelineMove] = []
        /// What the Sparkplug edge was last told of the clock (`SparkplugEdge.observeClock`).
        var edgeClock: EdgeClock?
    }

    /// The clock as the Sparkplug edge needs it to correct unsynced DDATA when it sends them: the boot, and the
    /// timeline's offset while synchronised.
    struct EdgeClock: Equatable {
        var bootId: String
        var syncedOffset: Int64?

        /// Whether the edge must hear of `next`: another boot, the synchronisation gained or lost, or a step of the
        /// synchronised offset. Its jitter within `TimeKeeper.stepTolerance` is no news (the tick tells it anyway).
        func differs(from next: EdgeClock) -> Bool {
            guard bootId == next.bootId else { return true }
            switch (syncedOffset, next.syncedOffset) {
            case (nil, nil): return false
            case (let a?, let b?): return abs(a - b) > TimeKeeper.stepTolerance
            default: return true
            }
        }
    }

    /// When a look at the clock tells the Sparkplug edge (if there is one): every time (the tick), or on a change
    /// (a poll).
    enum EdgeTelling {
        case always, onChange
    }

    /// The timeline jumped at a synchronisation: from `from` (the boot clock's offset) to `to` (the true one). Or,
    /// with `step`, the synchronised wall clock stepped (by `to - from`): the timers of the intelligence (dwell,
    /// debounce, staleness, rate of rise, rain and index histories) move with it, so the step neither fires nor
    /// suppresses them; the windows stay on the wall clock.
    struct TimelineMove {
        var bootId: String
        var from: Int64
        var to: Int64
        var step = false
    }

    /// The timeline of a process whose clock was unsynchronised, saved with the windows that run on it.
    struct SavedClock: Codable, Hashable {
        var bootId: String
        var offset: Int64
    }

    /// The journal's messages stamped `unsynced` to correct: those of `bootId` from their boottime when `offset`
    /// is known, those of other boots marked `unverified` (`Journal.correctTimes`).
    public struct TimeCorrectionRequest: Sendable, Hashable {
        public var bootId: String
        public var offset: Int64?
    }

    /// One look at the clock and the time state that goes with it, read under one lock: what a poll, a tick or an
    /// availability change stamps and marks its messages with.
    struct ClockView {
        /// The time on the gateway's timeline: the wall clock while synchronised, boottime-derived while not.
        var now: UnixMillis
        var sample: ClockSample
        var synced: Bool
        var keeper: TimeKeeper
        var policy: UnsyncedTimePolicy
        var untrustedBefore: UnixMillis?
        var unsyncedOffset: Int64?
        /// The timeline's moves so far (`TimeState.moves`).
        var moves: [TimelineMove] = []
        /// What to tell the Sparkplug edge of the clock now; nil when nothing.
        var tellEdge: EdgeClock?
    }

    /// The clock's state as `pantau status` shows it.
    public struct ClockStatus: Sendable {
        public var synced: Bool
        public var maxErrorMs: Int64?
        public var stepsSeen: Int
        public var held: Int
        public var heldOverflowed: Int
        public var released: Int
        public var policy: UnsyncedTimePolicy
        public var bootId: String
    }

    /// The configured devices and what their messages need; replaced as a whole on reload.
    struct Directory {
        var identity: GatewayIdentity
        var topics: TopicScheme
        var slots: [String: DeviceSlot]
        var format: MQTTConfig.TelemetryFormat = .senml
    }

    /// One device's intelligence behind its own lock.
    final class DeviceSlot: Sendable {
        let device: DeviceConfig
        let intelligence: Mutex<DeviceIntelligence>

        init(_ intelligence: DeviceIntelligence) {
            device = intelligence.device
            self.intelligence = Mutex(intelligence)
        }
    }

    public init(
        config: GatewayConfig, sink: MessageSink, clock: GatewayClock, logger: Logger,
        onPollInterval: @escaping @Sendable (_ device: String, _ interval: Interval) -> Void,
        sparkplug: SparkplugEdge? = nil
    ) {
        self.sparkplug = sparkplug
        self.sink = sink
        self.clock = clock
        self.logger = logger
        self.onPollInterval = onPollInterval
        directory = Mutex(Self.makeDirectory(config, keeping: [:]))
        time = Mutex(TimeState(policy: config.unsyncedTime))
    }

    public func clockStatus() -> ClockStatus {
        time.withLock { t in
            ClockStatus(
                synced: t.keeper.synced, maxErrorMs: t.keeper.maxErrorMs, stepsSeen: t.keeper.stepsSeen,
                held: t.held, heldOverflowed: t.overflowed, released: t.released, policy: t.policy,
                bootId: t.keeper.bootId)
        }
    }

    /// Looks at the clock: the time on the gateway's timeline now and whether it is synchronised (held telemetry
    /// is the journal's to correct and release then: `takeTimeCorrection`). `full` asks the system for the clock's
    /// synchronisation (the once-a-second tick); otherwise it is taken from the last full sample (the hot path).
    /// `edge` says when the view carries the clock for the Sparkplug edge (`tellEdge`).
    private func observeClock(full: Bool = true, edge: EdgeTelling? = nil) -> ClockView {
        let edge = sparkplug == nil ? nil : edge
        let last = full ? nil : time.withLock { $0.lastSample }
        let sample = last.map { clock.quickSample(after: $0) } ?? clock.clockSample()
        var released = 0
        let (view, actions) = time.withLock { t in
            if last == nil { t.lastSample = sample }
            let firstLook = !t.looked
            t.looked = true
            // A restart within the same boot while unsynchronised continues the saved timeline: the restored
            // windows and histories stay on it, whatever the wall clock did meanwhile.
            if firstLook, let resumed = t.resume, resumed.bootId == sample.bootId {
                t.keeper.resume(offset: resumed.offset)
            }
            t.resume = nil
            let wasRunning = t.keeper.offset != nil
            let wasSynced = t.keeper.synced
            let before = t.keeper.offset
            let actions = t.keeper.observe(sample)
            let synchronised = actions.contains(where: { if case .synchronised = $0 { true } else { false } })
            if wasRunning, synchronised, let from = before, let to = t.keeper.offset, from != to {
                t.unsyncedOffset = from
                t.moves.append(TimelineMove(bootId: sample.bootId, from: from, to: to))
            }
            let stepped = actions.contains(where: { if case .stepped = $0 { true } else { false } })
            if wasSynced, t.keeper.synced, stepped, let from = before, let to = t.keeper.offset, from != to {
                t.moves.append(TimelineMove(bootId: sample.bootId, from: from, to: to, step: true))
            }
            if firstLook || synchronised {
                t.correction = TimeCorrectionRequest(
                    bootId: sample.bootId, offset: t.keeper.synced ? t.keeper.offset : nil)
            }
            if wasRunning, synchronised { t.untrustedBefore = sample.wall }
            if t.keeper.synced, t.held > 0 {
                released = t.held
                t.released += t.held
                t.held = 0
            }
            // Synchronised: the wall clock is the truth. Unsynchronised: boottime on the last trusted offset.
            let now = t.keeper.synced ? sample.wall : t.keeper.time(atBoottime: sample.boottimeMs)
            var view = ClockView(
                now: now, sample: sample, synced: t.keeper.synced, keeper: t.keeper, policy: t.policy,
                untrustedBefore: t.untrustedBefore, unsyncedOffset: t.unsyncedOffset, moves: t.moves)
            let edgeClock = EdgeClock(bootId: sample.bootId, syncedOffset: t.keeper.synced ? t.keeper.offset : nil)
            if edge == .always || (edge == .onChange && t.edgeClock.map { $0.differs(from: edgeClock) } ?? true) {
                view.tellEdge = edgeClock
                t.edgeClock = edgeClock
            }
            return (view, actions)
        }
        for action in actions {
            switch action {
            case .stepped(let ms):
                logger.warning("wall clock stepped", metadata: ["by_ms": "\(ms)", "synced": "\(view.synced)"])
            case .synchronised(let ms):
                logger.notice(
                    "clock synchronised", metadata: ["correction_ms": "\(ms)", "released": "\(released)"])
            case .lostSync:
                logger.warning("clock lost its synchronisation; time runs on boottime")
            }
        }
        return view
    }

    /// What the journal should correct now that the clock was looked at or synchronised; nil when nothing new.
    public func takeTimeCorrection() -> TimeCorrectionRequest? {
        time.withLock { t in
            defer { t.correction = nil }
            return t.correction
        }
    }

    /// Queues messages with their clock stamp (journaled beside the wall time): the boot and the boottime their
    /// time stands for on the view's timeline (the one they were stamped on), and the time quality of their body.
    /// A message still marked `unsynced` once the keeper is synchronised was stamped on the timeline before it.
    private func append(_ messages: [OutboundMessage], _ view: ClockView) {
        let keeper = view.keeper
        let unsyncedOffset = view.unsyncedOffset
        sink.append(
            messages.map { message in
                guard message.stamp == nil else { return message }
                var m = message
                let quality = TimeMarking.quality(of: m.body)
                let offset = (quality == .unsynced && keeper.synced ? unsyncedOffset : nil) ?? keeper.offset ?? 0
                m.stamp = ClockStamp(bootId: keeper.bootId, boottimeMs: m.acquiredAt - offset, quality: quality)
                return m
            })
    }

    /// New devices start having followed `followed` timeline moves: their state begins on the current timeline.
    static func makeDirectory(
        _ config: GatewayConfig, keeping old: [String: DeviceSlot], followed: Int = 0
    ) -> Directory {
        var slots: [String: DeviceSlot] = [:]
        // Devices of one profile share its point table (copy on write): fifty devices of one profile hold one
        // table, not fifty (issue 17: 5.7 kB a device at the standard load).
        var tables: [String: (points: [PointSpec], table: [String: PointSpec])] = [:]
        for device in config.devices {
            // A device whose settings did not change keeps its windows, indices and alert state across a reload.
            if let existing = old[device.name], existing.device == device,
                existing.intelligence.withLock({ $0.aggregation }) == config.aggregation
            {
                slots[device.name] = existing
            } else {
                let points = device.profile.points
                let table =
                    tables[device.profile.id].flatMap { $0.points == points ? $0.table : nil }
                    ?? DeviceIntelligence.pointTable(points)
                tables[device.profile.id] = (points, table)
                var intelligence = DeviceIntelligence(device: device, aggregation: config.aggregation, points: table)
                intelligence.followed = followed
                slots[device.name] = DeviceSlot(intelligence)
            }
        }
        return Directory(
            identity: config.identity, topics: TopicScheme(prefix: config.mqtt.topicPrefix, identity: config.identity),
            slots: slots, format: config.mqtt.format)
    }

    /// Applies a reloaded configuration; devices that did not change keep their state. A device the new
    /// configuration no longer has gets a last retained availability, `offline` with reason `removed`.
    public func reconfigure(_ config: GatewayConfig) {
        let view = observeClock()
        time.withLock { $0.policy = config.unsyncedTime }
        let removed: [OutboundMessage] = directory.withLock { d in
            let gone = Self.removedAvailability(d, keeping: config, at: view.now).map { Self.marked($0, view.synced) }
            d = Self.makeDirectory(config, keeping: d.slots, followed: view.moves.count)
            return gone
        }
        if !removed.isEmpty { append(removed, view) }
        for message in removed {
            logger.notice("device removed by the new configuration", metadata: ["device": "\(message.device ?? "")"])
        }
    }

    /// The reason a removed device's retained availability gives (docs/mqtt.md).
    public static let removedReason = "removed"

    /// Issue 19.2: without this message a removed device's retained availability said `online` for ever.
    static func removedAvailability(
        _ d: Directory, keeping config: GatewayConfig, at now: UnixMillis
    ) -> [OutboundMessage] {
        let kept = Set(config.devices.map(\.name))
        return d.slots.keys.sorted().filter { !kept.contains($0) }.map { name in
            OutboundMessage(
                kind: .status, topic: d.topics.availability(name),
                body: PayloadEncoder.encode(AvailabilityPayload(online: false, reason: removedReason, at: now)),
                retain: true, device: name, acquiredAt: now)
        }
    }

    private func slot(_ device: String) -> (DeviceSlot, GatewayIdentity, TopicScheme)? {
        directory.withLock { d in d.slots[device].map { ($0, d.identity, d.topics) } }
    }

    private var compactTelemetry: Bool { directory.withLock { $0.format == .senmlCompact } }

    /// Runs `body` while holding one device's lock: the seam that shows another device is never held up by it.
    func whileHolding<T>(device: String, _ body: () -> T) -> T? {
        guard let (slot, _, _) = slot(device) else { return nil }
        return slot.intelligence.withLock { _ in body() }
    }

    /// One poll of one device, from a bus thread. Everything it yields is queued in one group.
    public func handle(_ received: DevicePoll) {
        guard let (slot, identity, topics) = slot(received.device) else { return }
        let compact = compactTelemetry
        let view = observeClock(full: false, edge: .onChange)
        let (sample, synced, keeper) = (view.sample, view.synced, view.keeper)
        var poll = received
        var boottimes: [Int64] = []
        // The poll's boottime from its age on the wall clock (it is handled on its bus thread as acquired); an age
        // beyond a minute or negative means the wall clock stepped since: the poll was handled as soon as acquired.
        let age = sample.wall - received.acquiredAt
        let base = sample.boottimeMs - ((0...60_000).contains(age) ? age : 0)
        // Acquired before the synchronisation this process saw, though handled after it: corrected from boottime.
        let lateCorrected =
            synced && view.untrustedBefore.map { received.acquiredAt < $0 - TimeKeeper.stepTolerance } == true
        if !synced || lateCorrected {
            // The wall clock was not to be trusted: restamp on the boottime timeline, so a step of the wall clock
            // neither opens nor loses a window.
            for i in poll.readings.indices {
                let offset = min(max(received.readings[i].acquiredAt - received.acquiredAt, -60_000), 60_000)
                poll.readings[i].acquiredAt = keeper.time(atBoottime: base + offset)
                boottimes.append(base + offset)
            }
            poll.acquiredAt = keeper.time(atBoottime: base)
        }
        var intervals: [Interval] = []
        var telemetry: OutboundMessage?
        var moved: [OutboundMessage] = []
        let messages: [OutboundMessage] = slot.intelligence.withLock { intel in
            // A move of the timeline since this device's last reading is followed before this one is taken.
            moved = Self.catchUp(&intel, view.moves, topics: topics, logger: logger)
            var out: [OutboundMessage] = []
            let keep = poll.readings.indices.filter { intel.shouldPublish(poll.readings[$0]) }
            let published = keep.map { poll.readings[$0] }
            if let sparkplug {
                // Sparkplug DDATA carries its own timestamps and is never held: a time not known true carries the
                // metric property `tq`, an unsynced one its boottime for the edge to correct (docs/sparkplug.md).
                let quality: TimeQuality? = !synced ? .unsynced : lateCorrected ? .corrected : nil
                // The edge's mutex only when the clock changed (a synchronisation, a step, another boot).
                if let told = view.tellEdge {
                    sparkplug.observeClock(bootId: told.bootId, syncedOffset: told.syncedOffset)
                }
                telemetry = sparkplug.dataMessage(
                    published, device: slot.device.name, acquiredAt: poll.acquiredAt, time: quality,
                    boottimes: quality == .unsynced ? keep.map { boottimes[$0] } : [], bootId: sample.bootId)
            } else if let body = PayloadEncoder.telemetry(
                published, identity: identity, device: slot.device.name, compact: compact)
            {
                let quality: TimeQuality? = !synced ? .unsynced : lateCorrected ? .corrected : nil
                telemetry = OutboundMessage(
                    kind: .telemetry, topic: topics.telemetry(slot.device.name),
                    body: quality.map { TimeMarking.mark(body, $0) } ?? body, device: slot.device.name,
                    acquiredAt: poll.acquiredAt, contentType: "application/senml+json")
                if !synced, view.policy == .hold {
                    // Held (issue 14): journaled, never published until the clock synchronises; the journal then
                    // corrects it from its boottime (`Journal.correctTimes`), also after a restart in this boot.
                    telemetry?.stamp = ClockStamp(bootId: sample.bootId, boottimeMs: base, quality: .held)
                }
            }
            out += intel.ingest(
                poll.readings, now: poll.acquiredAt, topics: topics, intervals: &intervals, logger: logger)
            return out
        }
        if telemetry?.stamp?.quality == .held { time.withLock { $0.held += 1 } }
        if !moved.isEmpty { append(sparkplugged(moved, view), view) }
        let output = (telemetry.map { [$0] } ?? []) + sparkplugged(marked(messages, view), view)
        if !output.isEmpty { append(output, view) }
        for interval in intervals { onPollInterval(poll.device, interval) }
    }

    /// Sparkplug: aggregates, indices and flood alerts are metrics of their device's DDATA (docs/sparkplug.md).
    /// Their time quality goes along (metric property `tq`); an unsynced one with its boottime, the offset taken as
    /// `append` takes it, so the edge corrects it when it sends it.
    func sparkplugged(_ messages: [OutboundMessage], _ view: ClockView) -> [OutboundMessage] {
        guard let sparkplug else { return messages }
        let keeper = view.keeper
        let offset = (keeper.synced ? view.unsyncedOffset : nil) ?? keeper.offset ?? 0
        return messages.map { message in
            guard var derived = sparkplug.derivedMessage(message, boottimeOffset: offset, bootId: keeper.bootId)
            else { return message }
            if derived.stamp == nil { derived.stamp = message.stamp }
            return derived
        }
    }

    /// Messages stamped on the unsynchronised timeline say so (`tq: unsynced`).
    func marked(_ messages: [OutboundMessage], _ view: ClockView) -> [OutboundMessage] {
        let before = view.untrustedBefore ?? .min
        return messages.map { Self.marked($0, view.synced && $0.acquiredAt >= before) }
    }

    /// A message made while the clock is unsynchronised says so (`tq: unsynced`).
    static func marked(_ message: OutboundMessage, _ synced: Bool) -> OutboundMessage {
        guard !synced else { return message }
        var m = message
        m.body = TimeMarking.mark(m.body, .unsynced)
        return m
    }

    /// Lets time pass: closes windows that ended without a new reading and flags silent level sensors stale.
    /// The gateway calls it about once a second.
    public func tick() {
        let view = observeClock(edge: .always)
        let now = view.now
        if let told = view.tellEdge { sparkplug?.observeClock(bootId: told.bootId, syncedOffset: told.syncedOffset) }
        let (slots, topics) = directory.withLock { d in (d.slots.sorted { $0.key < $1.key }.map(\.value), d.topics) }
        var intervals: [(String, Interval)] = []
        var messages: [OutboundMessage] = []
        var moved: [OutboundMessage] = []
        for slot in slots {
            var changed: [Interval] = []
            messages += slot.intelligence.withLock { intel in
                moved += Self.catchUp(&intel, view.moves, topics: topics, logger: logger)
                return intel.advance(to: now, topics: topics, intervals: &changed, logger: logger)
            }
            intervals += changed.map { (slot.device.name, $0) }
        }
        if !moved.isEmpty { append(sparkplugged(moved, view), view) }
        if !messages.isEmpty { append(sparkplugged(marked(messages, view), view), view) }
        for (device, interval) in intervals { onPollInterval(device, interval) }
    }

    /// Makes a device's intelligence follow the timeline's moves it has not followed yet, in order.
    static func catchUp(
        _ intel: inout DeviceIntelligence, _ moves: [TimelineMove], topics: TopicScheme, logger: Logger
    ) -> [OutboundMessage] {
        var out: [OutboundMessage] = []
        while intel.followed < moves.count {
            out += follow(moves[intel.followed], &intel, topics: topics, logger: logger)
            intel.followed += 1
        }
        return out
    }

    /// Makes a device's intelligence follow a step of the synchronised clock (its timers move, nothing is
    /// published) or the synchronisation's jump: the windows open on the boot clock's
    /// timeline close with what they hold and go out with their true times (`tq: corrected`, from boottime), the
    /// histories move with the timeline.
    static func follow(
        _ move: TimelineMove, _ intel: inout DeviceIntelligence, topics: TopicScheme, logger: Logger
    ) -> [OutboundMessage] {
        guard !move.step else {
            intel.timersMoved(by: move.to - move.from)
            return []
        }
        return intel.timelineMoved(by: move.to - move.from, topics: topics, logger: logger).map { message in
            var m = message
            m.body = TimeMarking.mark(m.body, .unsynced)
            m.stamp = ClockStamp(bootId: move.bootId, boottimeMs: m.acquiredAt - move.from, quality: .unsynced)
            return TimeCorrection.corrected(m, bootId: move.bootId, offset: move.to) ?? m
        }
    }

    /// A device came online or went offline: a retained availability message, queued like everything else.
    public func availability(device: String, online: Bool, reason: String) {
        let view = observeClock()
        let now = view.now
        guard let (_, _, topics) = slot(device) else { return }
        var body = PayloadEncoder.encode(AvailabilityPayload(online: online, reason: online ? nil : reason, at: now))
        if !view.synced { body = TimeMarking.mark(body, .unsynced) }
        var messages = [
            OutboundMessage(
                kind: .status, topic: topics.availability(device), body: body, retain: true, device: device,
                acquiredAt: now)
        ]
        // Sparkplug: DDEATH when a device goes offline, DBIRTH when it comes back.
        if let death = sparkplug?.availabilityMessage(device: device, online: online, at: now) {
            messages.append(death)
        }
        append(messages, view)
        if online {
            logger.info("device online", metadata: ["device": "\(device)"])
        } else {
            logger.warning("device offline", metadata: ["device": "\(device)", "reason": "\(reason)"])
        }
    }

    /// The poll interval each device's alert state asks for (nil: the configured one), to apply after a restart.
    public func requestedPollIntervals() -> [String: Interval] {
        directory.withLock { $0.slots }.compactMapValues { slot in slot.intelligence.withLock { $0.requestedInterval } }
    }

    // MARK: state that survives a restart

    struct Saved: Codable {
        var devices: [String: DeviceIntelligence.Saved]
        /// Set while the clock is unsynchronised (absent in saves of older versions).
        var clock: SavedClock?
    }

    /// Windows, index averages, rain and flood state, so a restart does not reset an hour's mean or an alert.
    public func snapshot() -> [UInt8] {
        let slots = directory.withLock { $0.slots }
        let clock = time.withLock { t in
            t.keeper.synced ? nil : t.keeper.offset.map { SavedClock(bootId: t.keeper.bootId, offset: $0) }
        }
        let saved = Saved(devices: slots.mapValues { slot in slot.intelligence.withLock { $0.saved() } }, clock: clock)
        return (try? Array(JSONEncoder().encode(saved))) ?? []
    }

    /// Restores what `snapshot()` saved; state of devices whose configuration changed is ignored.
    public func restore(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        do {
            let saved = try JSONDecoder().decode(Saved.self, from: Data(bytes))
            time.withLock { $0.resume = saved.clock }
            let slots = directory.withLock { $0.slots }
            for (name, part) in saved.devices {
                slots[name]?.intelligence.withLock { $0.restore(part) }
            }
        } catch {
            logger.warning("saved aggregation state unreadable, starting fresh", metadata: ["error": "\(error)"])
        }
    }
}

/// The per-device intelligence: report filters, windows, indices, flood engines and the rain accumulator.
struct DeviceIntelligence: Sendable {
    let device: DeviceConfig
    let aggregation: AggregationConfig
    var filters: [String: ReportFilter] = [:]
    var windows: WindowAggregator
    var air: AirQualityIndexer?
    var floods: [FloodAlertEngine]
    var floatSwitches: [FloatSwitchDebouncer]
    var rain: RainAccumulator?
    var lastRainReport: UnixMillis?
    var requestedInterval: Interval?
    /// How many of the pipeline's timeline moves this intelligence followed (`ReadingPipeline.catchUp`).
    var followed = 0
    /// Per flood engine: its state has been queued since this process started (issue 19.10: a retained alert
    /// message per water-level point from the start, not only from the first change).
    var floodAnnounced: [Bool] = []
    /// The profile's points by name: found by a dictionary on every reading, not a linear search.
    let points: [String: PointSpec]

    /// `points` is `pointTable(device.profile.points)`, passed in so devices of one profile can share it.
    init(device: DeviceConfig, aggregation: AggregationConfig, points: [String: PointSpec]? = nil) {
        self.device = device
        self.aggregation = aggregation
        self.points = points ?? Self.pointTable(device.profile.points)
        let interval = device.pollInterval
        windows = WindowAggregator(windows: aggregation.windows, expectedInterval: { _ in interval })
        air = device.airQuality.map {
            AirQualityIndexer(config: $0, expectedInterval: interval, minimumCoverage: aggregation.minimumCoverage)
        }
        // A level sensor is stale after three missed polls (at least a minute), never sooner than a slow poll.
        let stale = Interval(milliseconds: max(3 * interval.milliseconds, 60_000))
        floods = device.flood.map { FloodAlertEngine(config: $0, devicePollInterval: interval, staleAfter: stale) }
        floodAnnounced = floods.map { _ in false }
        floatSwitches = device.floatSwitches.map { FloatSwitchDebouncer(samples: $0.samples, dwell: $0.dwell) }
        rain = device.rain.map { RainAccumulator(config: $0) }
    }

    static func pointTable(_ points: [PointSpec]) -> [String: PointSpec] {
        Dictionary(points.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    mutating func shouldPublish(_ reading: Reading) -> Bool {
        guard points[reading.point]?.publish ?? true else { return false }
        let strategy = device.report[reading.point] ?? aggregation.defaultReport
        if strategy.mode == .everyPoll && strategy.heartbeat == nil { return true }
        var filter = filters[reading.point] ?? ReportFilter(strategy: strategy)
        let publish = filter.shouldPublish(reading)
        filters[reading.point] = filter
        return publish
    }

    mutating func ingest(
        _ readings: [Reading], now: UnixMillis, topics: TopicScheme, intervals: inout [Interval], logger: Logger
    ) -> [OutboundMessage] {
        var out: [OutboundMessage] = []
        for reading in readings where points[reading.point]?.publish ?? true {
            out += windows.ingest(reading).compactMap { encode(AggregatePayload($0), topics, logger) }
            air?.ingest(reading)
            for i in floods.indices where floods[i].config.point == reading.point {
                let actions = floods[i].ingest(reading)
                out += floodMessages(
                    i, actions, at: reading.acquiredAt, topics: topics, intervals: &intervals, logger: logger)
            }
            for (i, config) in device.floatSwitches.enumerated() where config.point == reading.point {
                if let wet = floatSwitches[i].ingest(reading) {
                    logger.notice(
                        "float switch changed",
                        metadata: [
                            "device": "\(device.name)", "point": "\(config.point)", "state": "\(wet ? "wet" : "dry")",
                        ])
                    let payload = FloatSwitchPayload(
                        device: device.name, switchConfig: config, wet: wet, at: reading.acquiredAt)
                    out += [wrap(logger) { try payload.message(topics: topics) }].compactMap { $0 }
                }
            }
            if var r = rain, r.config.point == reading.point {
                r.ingest(reading)
                rain = r
            }
        }
        out += evaluate(now: now, topics: topics, logger: logger)
        return out
    }

    mutating func advance(
        to now: UnixMillis, topics: TopicScheme, intervals: inout [Interval], logger: Logger
    ) -> [OutboundMessage] {
        var out = windows.advance(to: now).compactMap { encode(AggregatePayload($0), topics, logger) }
        for i in floods.indices {
            out += floodMessages(
                i, floods[i].advance(to: now), at: now, topics: topics, intervals: &intervals, logger: logger)
        }
        out += evaluate(now: now, topics: topics, logger: logger)
        return out
    }

    /// The timeline moved by `d` (issue 14): the windows open on the old one close now (returned, on the old
    /// timeline); the watermark, flood, rain and air-quality histories move by `d`.
    mutating func timelineMoved(by d: Int64, topics: TopicScheme, logger: Logger) -> [OutboundMessage] {
        let watermark = windows.snapshot().watermark
        let closed = windows.advance(to: .max).compactMap { encode(AggregatePayload($0), topics, logger) }
        var state = windows.snapshot()
        state.watermark = watermark
        var s = saved()
        s.windows = state.moved(by: d)
        restore(s)
        timersMoved(by: d)
        return closed
    }

    /// The synchronised wall clock stepped by `d` (issue 14): every timer moves with it, so a dwell, a debounce,
    /// a staleness or a rate-of-rise period counts the time that passed, not the step. Windows stay as they are.
    mutating func timersMoved(by d: Int64) {
        var s = saved()
        s.air = s.air?.moved(by: d)
        s.floods = s.floods.map { $0.moved(by: d) }
        s.floodMemory = s.floodMemory?.map { $0.moved(by: d) }
        s.rain = s.rain?.moved(by: d)
        s.lastRainReport = s.lastRainReport.map { $0 + d }
        restore(s)
        floatSwitches = floatSwitches.map { $0.moved(by: d) }
    }

    /// Indices hourly and on category change; rain at each window of the shortest configured length.
    private mutating func evaluate(now: UnixMillis, topics: TopicScheme, logger: Logger) -> [OutboundMessage] {
        var out: [OutboundMessage] = []
        if var a = air {
            let e = a.evaluate(now: now)
            air = a
            if e.publishISPU, let r = e.ispu {
                out += [
                    encode(
                        ISPUPayload(device: device.name, result: r, minimumCoverage: aggregation.minimumCoverage),
                        topics, logger)
                ].compactMap { $0 }
            }
            if e.publishAQI, let r = e.aqi {
                out += [encode(AQIPayload(device: device.name, result: r), topics, logger)].compactMap { $0 }
            }
        }
        if var r = rain {
            let period = aggregation.windows.min()?.milliseconds ?? 60_000
            let due = lastRainReport.map { now / period > $0 / period } ?? true
            if due {
                let report = r.report(now: now)
                rain = r
                lastRainReport = now
                out += [encode(RainPayload(device: device.name, point: r.config.point, report: report), topics, logger)]
                    .compactMap { $0 }
            }
        }
        return out
    }

    private mutating func floodMessages(
        _ index: Int, _ actions: [FloodAlertEngine.Action], at time: UnixMillis, topics: TopicScheme,
        intervals: inout [Interval], logger: Logger
    ) -> [OutboundMessage] {
        var stateChanged = false
        for action in actions {
            switch action {
            case .pollInterval(let interval):
                requestedInterval = interval == device.pollInterval ? nil : interval
                intervals.append(interval)
                windows.pollIntervalChanged(device: device.name, to: interval, at: time)
            case .levelChanged(let from, let to, let value, _):
                stateChanged = true
                logger.notice(
                    "flood level changed",
                    metadata: [
                        "device": "\(device.name)", "point": "\(floods[index].config.point)",
                        "from": "\(from.name)", "to": "\(to.name)", "value": "\(value)",
                    ])
            case .rateOfRise, .sensorStale:
                stateChanged = true
            }
        }
        // The first state of this process goes out once there is one to tell (a restored or a first good level).
        let announce = index < floodAnnounced.count && !floodAnnounced[index] && floods[index].status.valueAt != nil
        guard stateChanged || announce else { return [] }
        if index < floodAnnounced.count { floodAnnounced[index] = true }
        let unit = points[floods[index].config.point]?.unit ?? ""
        return [
            encode(FloodAlertPayload(device: device.name, unit: unit, engine: floods[index], at: time), topics, logger)
        ]
        .compactMap { $0 }
    }

    private func encode(_ payload: AggregatePayload, _ topics: TopicScheme, _ logger: Logger) -> OutboundMessage? {
        wrap(logger) { try payload.message(topics: topics) }
    }
    private func encode(_ payload: ISPUPayload, _ topics: TopicScheme, _ logger: Logger) -> OutboundMessage? {
        wrap(logger) { try payload.message(topics: topics) }
    }
    private func encode(_ payload: AQIPayload, _ topics: TopicScheme, _ logger: Logger) -> OutboundMessage? {
        wrap(logger) { try payload.message(topics: topics) }
    }
    private func encode(_ payload: FloodAlertPayload, _ topics: TopicScheme, _ logger: Logger) -> OutboundMessage? {
        wrap(logger) { try payload.message(topics: topics) }
    }
    private func encode(_ payload: RainPayload, _ topics: TopicScheme, _ logger: Logger) -> OutboundMessage? {
        wrap(logger) { try payload.message(topics: topics) }
    }

    private func wrap(_ logger: Logger, _ make: () throws -> OutboundMessage) -> OutboundMessage? {
        do { return try make() } catch {
            logger.error("cannot encode a message", metadata: ["device": "\(device.name)", "error": "\(error)"])
            return nil
        }
    }

    struct Saved: Codable {
        var windows: WindowAggregator.State
        var air: AirQualityIndexer.State?
        var floods: [FloodAlertStatus]
        /// The flood engines' dwell timers and level history (issue 19.9); absent in saves of older versions.
        var floodMemory: [FloodAlertEngine.Memory]?
        var rain: RainAccumulator.State?
        var lastRainReport: UnixMillis?
    }

    func saved() -> Saved {
        Saved(
            windows: windows.snapshot(), air: air?.snapshot(), floods: floods.map(\.status),
            floodMemory: floods.map(\.memory), rain: rain?.snapshot(), lastRainReport: lastRainReport)
    }

    mutating func restore(_ s: Saved) {
        windows.restore(s.windows)
        if let a = s.air { air?.restore(a) }
        if s.floods.count == floods.count {
            let interval = device.pollInterval
            let stale = Interval(milliseconds: max(3 * interval.milliseconds, 60_000))
            let memory = s.floodMemory?.count == floods.count ? s.floodMemory : nil
            floods = zip(device.flood, s.floods).enumerated().map { i, pair in
                FloodAlertEngine(
                    config: pair.0, devicePollInterval: interval, staleAfter: stale, status: pair.1, memory: memory?[i])
            }
            requestedInterval = floods.map(\.pollInterval).min().flatMap { $0 == interval ? nil : $0 }
        }
        if let r = s.rain { rain?.restore(r) }
        lastRainReport = s.lastRainReport
    }
}
