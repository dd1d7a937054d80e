import ArgumentParser
import FoundationEssentials
import PantauCore
import PantauGateway

#if canImport(Glibc)
    import Glibc
#endif

/// Prints to standard error.
func printError(_ text: String) {
    var line = text
    if !line.hasSuffix("\n") { line += "\n" }
    _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
}

/// Stops the command with a sysexits code after printing one clear line and a hint.
func fail(_ message: String, hint: String? = nil, code: PantauGateway.ExitCode) -> ArgumentParser.ExitCode {
    printError("error: \(message)")
    if let hint { printError("hint: \(hint)") }
    return ArgumentParser.ExitCode(code.rawValue)
}

/// Prints an Encodable value as pretty JSON (the `--json` form of every diagnostic command).
func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    if let data = try? encoder.encode(value) { print(String(decoding: data, as: UTF8.self)) }
}

/// Loads a configuration or exits 78 with every error found.
func loadConfigOrExit(_ path: String) throws -> GatewayConfig {
    switch ConfigLoading.load(path) {
    case .success(let config): return config
    case .failure(let error):
        printError(error.description)
        printError(
            "\(path): \(DiagnosticsFormat.counted(error.diagnostics.count, "error")); nothing was started")
        throw ArgumentParser.ExitCode(PantauGateway.ExitCode.config.rawValue)
    }
}

struct ConfigOption: ParsableArguments {
    @Option(name: [.short, .long], help: "The gateway configuration file.")
    var config: String = "/etc/pantau/gateway.yaml"
}

/// Standard output is block-buffered when it is a pipe; tests and scripts reading "serving on PORT" need it now.
func flushStandardOutput() {
    fflush(nil)
}
