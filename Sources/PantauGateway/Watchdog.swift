import Logging
import PantauCore
import PantauPlatform
import ServiceLifecycle

/// One thing the supervisor watches: a name and how to read the monotonic time of its last progress.
public struct ProgressProbe: Sendable {
    public let name: String
    /// A longer limit for a worker whose single step can legitimately take longer; nil uses the supervisor's.
    public let stallLimit: Duration?
    public let lastProgressNanos: @Sendable () -> UInt64

    public init(name: String, stallLimit: Duration? = nil, lastProgressNanos: @escaping @Sendable () -> UInt64) {
        self.name = name
        self.stallLimit = stallLimit
        self.lastProgressNanos = lastProgressNanos
    }
}

/// A probe that has not progressed within its limit.
public struct StalledProbe: Sendable, Equatable {
    public let name: String
    /// How long it has been silent, in nanoseconds.
    public let silentNanos: UInt64
}

/// Whether the gateway deserves a `WATCHDOG=1` now.
public enum WatchdogVerdict: Sendable, Equatable {
    case healthy
    case stalled([StalledProbe])

    /// The names of the stalled probes, empty when healthy.
    public var stalledNames: [String] {
        if case .stalled(let probes) = self { return probes.map(\.name) }
        return []
    }
}

/// Decides whether to ping the systemd watchdog: only when every probe progressed within its stall limit.
///
/// Withholding the ping is the whole mechanism: systemd then kills and restarts the gateway after `WatchdogSec=`,
/// which is the only way out of a thread wedged inside a blocking C call.
public struct WatchdogSupervisor: Sendable {
    public let probes: [ProgressProbe]
    public let stallLimit: Duration
    private let clock: any GatewayClock

    public init(probes: [ProgressProbe], stallLimit: Duration, clock: any GatewayClock = SystemClock()) {
        self.probes = probes
        self.stallLimit = stallLimit
        self.clock = clock
    }

    /// Reads every probe against the clock now.
    public func verdict() -> WatchdogVerdict {
        let now = clock.monotonicNanos()
        let stalled = probes.compactMap { probe -> StalledProbe? in
            let last = probe.lastProgressNanos()
            // A beat that lands between our clock read and the probe read is newer than `now`: not silent.
            let silent = now > last ? now - last : 0
            let limit = Self.nanos(probe.stallLimit ?? stallLimit)
            return silent > limit ? StalledProbe(name: probe.name, silentNanos: silent) : nil
        }
        return stalled.isEmpty ? .healthy : .stalled(stalled)
    }

    /// True when `WATCHDOG=1` may be sent now.
    public var shouldPing: Bool { verdict() == .healthy }

    private static func nanos(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }
}

/// The long-running service that pings systemd at `watchdogInterval` while every probe progressed within its stall
/// limit; `pantau run` runs it beside the gateway (`GatewayService`).
///
/// Without a watchdog (`WATCHDOG_USEC` unset) it only waits for shutdown, because a service that returns early would
/// end the whole `ServiceGroup`.
public struct WatchdogService: Service {
    private let probes: @Sendable () -> [ProgressProbe]
    private let stallLimit: Duration
    private let clock: any GatewayClock
    private let notifier: SystemdNotifier
    private let reporter: WatchdogReporter

    /// `probes` is asked at every tick, so the workers a reload starts are watched from the next tick on.
    public init(
        probes: @escaping @Sendable () -> [ProgressProbe], stallLimit: Duration,
        clock: any GatewayClock = SystemClock(), notifier: SystemdNotifier, logger: Logger,
        healthyStatus: @escaping @Sendable () -> String? = { nil }
    ) {
        self.probes = probes
        self.stallLimit = stallLimit
        self.clock = clock
        self.notifier = notifier
        reporter = WatchdogReporter(notifier: notifier, logger: logger, healthyStatus: healthyStatus)
    }

    public func run() async throws {
        guard let interval = notifier.watchdogInterval, notifier.isEnabled else {
            try? await gracefulShutdown()
            return
        }
        // The watchdog is disarmed once systemd sends SIGTERM, so there is nothing to ping during graceful shutdown.
        try? await cancelWhenGracefulShutdown {
            var previous = WatchdogVerdict.healthy
            while !Task.isCancelled {
                let supervisor = WatchdogSupervisor(probes: probes(), stallLimit: stallLimit, clock: clock)
                previous = reporter.report(supervisor.verdict(), after: previous)
                try await Task.sleep(for: interval)
            }
        }
    }
}

/// Acts on a watchdog verdict: pings when healthy and logs only the transitions, so a stall is one error line, not
/// one per interval. docs/install.md quotes these lines; keep them in step.
public struct WatchdogReporter: Sendable {
    /// The error line of a stall, as operators search for it (docs/install.md).
    public static let stalledLine = "workers stalled, withholding watchdog ping; systemd will restart the gateway"
    /// The notice when every worker progresses again.
    public static let resumedLine = "all workers progress again, watchdog pings resumed"

    let notifier: SystemdNotifier
    let logger: Logger
    /// The STATUS= line that replaces `stalled: ...` once the stall is over.
    let healthyStatus: @Sendable () -> String?

    public init(notifier: SystemdNotifier, logger: Logger, healthyStatus: @escaping @Sendable () -> String? = { nil }) {
        self.notifier = notifier
        self.logger = logger
        self.healthyStatus = healthyStatus
    }

    /// Pings or withholds for `verdict`; returns it as the `previous` of the next call.
    @discardableResult
    public func report(_ verdict: WatchdogVerdict, after previous: WatchdogVerdict) -> WatchdogVerdict {
        switch verdict {
        case .healthy:
            if previous != .healthy {
                logger.notice("\(Self.resumedLine)")
                try? notifier.status(healthyStatus() ?? "running")
            }
            do {
                try notifier.watchdog()
            } catch {
                logger.warning("watchdog ping failed", metadata: ["error": "\(error)"])
            }
        case .stalled(let probes):
            if previous.stalledNames != verdict.stalledNames {
                let names = probes.map(\.name).joined(separator: ", ")
                let seconds = probes.map { "\($0.name)=\($0.silentNanos / 1_000_000_000)s" }.joined(separator: " ")
                logger.error("\(Self.stalledLine)", metadata: ["stalled": "\(names)", "silent": "\(seconds)"])
                try? notifier.status("stalled: \(names)")
            }
        }
        return verdict
    }
}
