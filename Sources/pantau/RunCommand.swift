import ArgumentParser
import Logging
import PantauCore
import PantauGateway
import ServiceLifecycle

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the gateway until SIGTERM or SIGINT (SIGHUP reloads the configuration).",
        discussion: """
            Logs go to standard error, with journald priorities when started by systemd. A configuration error exits \
            78 before anything starts; a journal that cannot be opened exits 74.
            """)

    @OptionGroup var options: ConfigOption

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        JournaldLogHandler.bootstrap(logLevel: logLevel)
        let logger = Logger(label: "pantau")
        let config = try loadConfigOrExit(options.config)
        let gateway: Gateway
        do {
            gateway = try Gateway(config: config, logger: logger)
        } catch {
            throw fail(
                "\(error)", hint: "check journal.path in \(options.config) and that its folder exists and is writable",
                code: .ioError)
        }
        // The configuration and the profiles are parsed and the journal is open: what that allocated is free now.
        ProcessMemory.trim()
        let service = GatewayService(
            gateway: gateway, configPath: options.config, notifier: SystemdNotifier.fromEnvironment(), logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
