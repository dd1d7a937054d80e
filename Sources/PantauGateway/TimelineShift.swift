import PantauCore

// Issue 14: at the clock's synchronisation the gateway's timeline jumps from the boot clock's to the true time. What
// the intelligence remembers moves with it, so the last hour's or day's rain, a rise over the last period and a
// NowCast still count the readings taken before the synchronisation, on times consistent with the boot clock.

extension FloodAlertStatus {
    func moved(by d: Int64) -> FloodAlertStatus { moving(self, \.since, \.valueAt, by: d) }
}

extension FloodAlertEngine.Memory {
    func moved(by d: Int64) -> FloodAlertEngine.Memory {
        var m = moving(self, \.lastGoodAt, \.firstSeenAt, by: d)
        m.aboveSince = aboveSince.mapValues { $0 + d }
        m.belowSince = belowSince.mapValues { $0 + d }
        m.recent = recent.moved(\.at, by: d)
        return m
    }
}

extension RainAccumulator.State {
    func moved(by d: Int64) -> RainAccumulator.State {
        var s = moving(self, \.lastAt, \.intervalStart, by: d)
        s.increments = increments.moved(\.at, by: d)
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
                var m = moving(sum, \.first, \.last, by: minutesMoved)
                m.minute += minutesMoved
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

/// `value` with the times at `keys` moved by `d` milliseconds; an absent time stays absent.
func moving<Value>(_ value: Value, _ keys: WritableKeyPath<Value, Int64?>..., by d: Int64) -> Value {
    var moved = value
    for key in keys { moved[keyPath: key] = value[keyPath: key].map { $0 + d } }
    return moved
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
