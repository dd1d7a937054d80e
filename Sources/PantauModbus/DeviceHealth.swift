import PantauCore

/// When a silent device is declared offline and how far its polls back off.
public struct OfflinePolicy: Sendable, Hashable {
    /// Consecutive polls without an answer before the device is declared offline.
    public var failuresBeforeOffline: Int
    /// Offline probes happen at the interval times this factor, doubling per failed probe up to here...
    public var maxBackoffFactor: Int
    /// ...and never further apart than this (unless the configured interval itself is longer): a device that
    /// comes back is read again within max(poll interval, this).
    public var maxBackoff: Interval
    /// Response timeout of a probe (capped by the device's own), so a dead device cannot stall its neighbours.
    public var probeTimeoutMs: Int

    public init(
        failuresBeforeOffline: Int = 3, maxBackoffFactor: Int = 16, maxBackoff: Interval = .seconds(5),
        probeTimeoutMs: Int = 300
    ) {
        self.failuresBeforeOffline = failuresBeforeOffline
        self.maxBackoffFactor = maxBackoffFactor
        self.maxBackoff = maxBackoff
        self.probeTimeoutMs = probeTimeoutMs
    }
}

/// The availability state machine of one device. Starts unknown; the first answer makes it online.
struct DeviceHealth: Sendable {
    enum Availability: Sendable { case unknown, online, offline }
    enum Transition: Sendable, Equatable { case cameOnline, wentOffline }

    private(set) var availability = Availability.unknown
    private(set) var consecutiveErrors = 0
    /// Polls in a row the device did not answer at all; only these lead to offline.
    private(set) var consecutiveSilent = 0
    private(set) var errorsTotal = 0
    private(set) var polls = 0
    private(set) var backoffFactor = 1
    private(set) var lastReadingAt: UnixMillis?
    private(set) var lastError: ModbusError?

    var isProbing: Bool { availability == .offline }

    var online: Bool? {
        switch availability {
        case .unknown: return nil
        case .online: return true
        case .offline: return false
        }
    }

    /// A poll ended. `error` is nil for a clean poll; `answered` says the device replied at all (an exception
    /// reply is an answer); `gotReadings` says some registers were read.
    mutating func record(
        error: ModbusError?, answered: Bool, gotReadings: Bool, at time: UnixMillis, policy: OfflinePolicy
    ) -> Transition? {
        polls += 1
        if gotReadings { lastReadingAt = time }
        lastError = error
        if error != nil {
            consecutiveErrors += 1
            errorsTotal += 1
        } else {
            consecutiveErrors = 0
        }
        if answered {
            consecutiveSilent = 0
            backoffFactor = 1
            guard availability != .online else { return nil }
            availability = .online
            return .cameOnline
        }
        consecutiveSilent += 1
        if availability == .offline {
            backoffFactor = min(backoffFactor * 2, max(1, policy.maxBackoffFactor))
            return nil
        }
        guard consecutiveSilent >= policy.failuresBeforeOffline else { return nil }
        availability = .offline
        backoffFactor = min(2, max(1, policy.maxBackoffFactor))
        return .wentOffline
    }

    /// The interval in force: `base`, stretched while offline.
    func effectiveInterval(base: Interval, policy: OfflinePolicy) -> Interval {
        guard backoffFactor > 1 else { return base }
        let cap = max(base.milliseconds, policy.maxBackoff.milliseconds)
        return Interval(milliseconds: min(base.milliseconds * Int64(backoffFactor), cap))
    }
}
