import PantauCore

// Issue 14: at the clock's synchronisation the gateway's timeline jumps from the boot clock's to the true time. What
// the intelligence remembers moves with it, so the last hour's or day's rain, a rise over the last period and a
// NowCast still count the readings taken before the synchronisation, on times consistent with the boot clock.

extension FloodAlertStatus {
    func moved(by d: Int64) -> FloodAlertStatus {
        var s = self
        s.since = since.map { $0 + d }
        s.valueAt = valueAt.map { $0 + d }
        return s
    }
}

extension FloodAlertEngine.Memory {
    func moved(by d: Int64) -> FloodAlertEngine.Memory {
        var m = self
        m.aboveSince = aboveSince.mapValues { $0 + d }
        m.belowSince = belowSince.mapValues { $0 + d }
        m.recent = recent.moved(\.at, by: d)
        m.lastGoodAt = lastGoodAt.map { $0 + d }
        m.firstSeenAt = firstSeenAt.map { $0 + d }
        return m
    }
}

extension RainAccumulator.State {
    func moved(by d: Int64) -> RainAccumulator.State {
        var s = self
        s.lastAt = lastAt.map { $0 + d }
        s.increments = increments.moved(\.at, by: d)
        s.intervalStart = intervalStart.map { $0 + d }
        return s
    }
}

extension AirQualityIndexer.State {
    /// Minute sums stay on minute boundaries: they move by whole minutes (the nearest to `d`).
    func moved(by d: Int64) -> AirQualityIndexer.State {
        let minutesMoved = (d >= 0 ? d + 30_000 : d - 30_000) / 60_000 * 60_000
        var s = self
        s.minutes = minutes.mapValues { sums in
            sums.map { sum in
                var m = sum
                m.minute += minutesMoved
                m.first = sum.first.map { $0 + minutesMoved }
                m.last = sum.last.map { $0 + minutesMoved }
                return m
            }
        }
        return s
    }
}

extension WindowAggregator.State {
    /// The watermark and the poll-interval history move; the windows themselves were closed before.
    func moved(by d: Int64) -> WindowAggregator.State {
        var s = self
        if watermark != .min { s.watermark = watermark + d }
        s.intervalChanges = intervalChanges?.mapValues { $0.moved(\.at, by: d) }
        return s
    }
}

extension Array {
    /// Every element with the time at `key` moved by `d` milliseconds.
    func moved(_ key: WritableKeyPath<Element, Int64>, by d: Int64) -> [Element] {
        map { element in
            var e = element
            e[keyPath: key] += d
            return e
        }
    }
}
