import ArgumentParser
import PantauCore
import PantauGateway

struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration file and report every error as file:line:column: message (exit 78).")

    @Argument(help: "The configuration file.")
    var file: String = "/etc/pantau/gateway.yaml"

    @Flag(help: "Print the result as JSON.")
    var json = false

    struct Report: Encodable {
        var file: String
        var ok: Bool
        var errors: [Entry]
        var devices: Int
        var buses: Int
        struct Entry: Encodable {
            var line: Int
            var column: Int
            var file: String
            var message: String
        }
    }

    func run() throws {
        switch ConfigLoading.load(file) {
        case .success(let config):
            if json {
                printJSON(
                    Report(file: file, ok: true, errors: [], devices: config.devices.count, buses: config.buses.count))
            } else {
                print(
                    "\(file): OK (\(DiagnosticsFormat.counted(config.buses.count, "bus", plural: "buses")), "
                        + "\(DiagnosticsFormat.counted(config.devices.count, "device")))"
                )
            }
        case .failure(let error):
            if json {
                printJSON(
                    Report(
                        file: file, ok: false,
                        errors: error.diagnostics.map {
                            .init(
                                line: $0.location.line, column: $0.location.column, file: $0.location.file,
                                message: $0.message)
                        },
                        devices: 0, buses: 0))
            } else {
                print(error.description)
                printError("\(file): \(DiagnosticsFormat.counted(error.diagnostics.count, "error"))")
            }
            throw ExitCode(PantauGateway.ExitCode.config.rawValue)
        }
    }
}
