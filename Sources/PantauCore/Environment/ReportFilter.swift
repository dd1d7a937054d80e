/// Decides whether one point's reading goes out as raw telemetry, from its `ReportStrategy`. One per point.
///
/// Rules, in order: the first reading is published; a change of quality is always published (so a fault, and
/// the recovery from it, are seen); a heartbeat publishes when the last publication is at least `heartbeat`
/// old; `every_poll` publishes everything; `on_change` publishes a good number when it differs from the last
/// *published* value by more than a deadband (absolute, or relative to that value; either one suffices), or by
/// any amount when no deadband is set. Flags and text publish when they differ. Comparing with the last published
/// value, not the last seen one, keeps a slow drift from hiding inside the deadband forever.
public struct ReportFilter: Sendable {
    public let strategy: ReportStrategy
    private var lastValue: PointValue?
    private var lastQuality: Quality?
    private var lastPublishedAt: UnixMillis?

    public init(strategy: ReportStrategy) {
        self.strategy = strategy
    }

    /// True when the reading should be published; the filter then remembers it as the last published one.
    public mutating func shouldPublish(_ reading: Reading) -> Bool {
        guard decide(reading) else { return false }
        lastValue = reading.value
        lastQuality = reading.quality
        lastPublishedAt = reading.acquiredAt
        return true
    }

    private func decide(_ reading: Reading) -> Bool {
        guard let lastQuality, let lastPublishedAt else { return true }
        if reading.quality != lastQuality { return true }
        if let heartbeat = strategy.heartbeat, reading.acquiredAt - lastPublishedAt >= heartbeat.milliseconds {
            return true
        }
        switch strategy.mode {
        case .everyPoll: return true
        case .onChange: return changed(from: lastValue, to: reading.value)
        }
    }

    private func changed(from old: PointValue?, to new: PointValue?) -> Bool {
        guard case .number(let a)? = old, case .number(let b)? = new else { return old != new }
        let difference = abs(b - a)
        let absolute = strategy.deadbandAbsolute
        let relative = strategy.deadbandRelative
        if absolute == nil && relative == nil { return a != b }
        if let absolute, difference > absolute { return true }
        if let relative {
            // From zero every change is infinitely large relatively.
            if a == 0 { return difference > 0 }
            if difference / abs(a) > relative { return true }
        }
        return false
    }
}
