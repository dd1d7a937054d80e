import ArgumentParser
import PantauGateway

@main
struct Pantau: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pantau",
        abstract: "Edge gateway for environment sensing: Modbus RTU/TCP sensors to MQTT, with a durable journal.",
        discussion:
            "Exit codes follow sysexits: 78 for a configuration error, 69 when a device or broker is unreachable.",
        version: PantauVersion.current,
        subcommands: [
            RunCommand.self, CheckConfigCommand.self, DemoCommand.self, SimulateCommand.self, StatusCommand.self,
            JournalCommand.self, MQTTTestCommand.self, ScanCommand.self, ReadCommand.self, RawCommand.self,
            ProfilesCommand.self, CmdCommand.self, MonitorCommand.self,
        ]
    )

    /// ArgumentParser's own entry point, after the allocator settings of `pantau run`: they must be in place before
    /// the first thread other than the main one allocates (`run()` itself already runs on the concurrency pool).
    static func main() async {
        if CommandLine.arguments.dropFirst().first == "run" { ProcessMemory.configure() }
        await main(nil)
    }
}
