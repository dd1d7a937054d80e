import Logging
import PantauCore
import PantauPlatform
import ServiceLifecycle
import UnixSignals

/// `pantau run` as a service: starts the gateway, tells systemd when it is ready, reloads on SIGHUP, feeds the
/// watchdog only while every worker thread makes progress, and stops cleanly on SIGTERM or SIGINT.
public struct GatewayService: Service {
    let gateway: Gateway
    let configPath: String
    let notifier: SystemdNotifier
    let logger: Logger
    /// A worker silent this long is wedged: the watchdog stops, and systemd restarts the gateway.
    let stallLimit: Duration

    public init(
        gateway: Gateway, configPath: String, notifier: SystemdNotifier, logger: Logger,
        stallLimit: Duration = .seconds(20)
    ) {
        self.gateway = gateway
        self.configPath = configPath
        self.notifier = notifier
        self.logger = logger
        self.stallLimit = stallLimit
    }

    public func run() async throws {
        gateway.start()
        try? notifier.ready(status: gateway.summary())
        logger.info("pantau running", metadata: ["version": "\(PantauVersion.current)", "config": "\(configPath)"])
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await reloadOnHangup() }
            group.addTask { try? await watchdog().run() }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        try? notifier.stopping(status: "stopping: committing the journal")
        logger.info("stopping: committing the journal and settling the publish window")
        await offThePool { gateway.stop() }
        logger.info("stopped")
    }

    private func reloadOnHangup() async {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            try? notifier.reloading(status: "reloading \(configPath)")
            switch ConfigLoading.load(configPath) {
            case .success(let config):
                await offThePool { gateway.reload(config) }
            case .failure(let error):
                for d in error.diagnostics { logger.error("\(d)") }
                logger.error(
                    "new configuration refused; the running one stays",
                    metadata: ["errors": "\(error.diagnostics.count)"])
            }
            try? notifier.ready(status: gateway.summary())
        }
    }

    /// The watchdog over every bus thread, the publisher and housekeeping, as the gateway reports them now.
    private func watchdog() -> WatchdogService {
        WatchdogService(
            probes: { [gateway] in
                gateway.progressProbes().map { name, nanos in ProgressProbe(name: name) { nanos } }
            },
            stallLimit: stallLimit, notifier: notifier, logger: logger,
            // STATUS= after a stall goes back to the gateway's own line.
            healthyStatus: { [gateway] in gateway.summary() })
    }
}

/// Runs blocking work (joining threads, committing the journal) on a thread of ours, so the cooperative pool, which
/// has as many threads as the board has cores, never waits in it.
func offThePool(_ work: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        OwnedThread {
            work()
            done.resume()
        }.detach()
    }
}
