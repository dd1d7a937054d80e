import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real mosquitto on a free loopback port, configured in a temporary directory and killed when the test ends.
final class TestBroker {
    enum Failure: Error, CustomStringConvertible {
        case didNotStart(String)
        case command(String)

        var description: String {
            switch self {
            case .didNotStart(let log): return "mosquitto did not start: \(log)"
            case .command(let text): return text
            }
        }
    }

    let directory: URL
    private(set) var port: Int
    private let listenerLines: [String]
    private var process: Process?

    /// `listenerLines` go right after `listener <port> 127.0.0.1` (e.g. `allow_anonymous true`, TLS files).
    init(listenerLines: [String] = ["allow_anonymous true"], directory: URL? = nil) throws {
        self.directory = try directory ?? Self.makeTemporaryDirectory()
        self.listenerLines = listenerLines
        self.port = 0
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    var host: String { "127.0.0.1" }
    var logText: String {
        (try? String(contentsOf: directory.appendingPathComponent("mosquitto.log"), encoding: .utf8)) ?? ""
    }

    /// Starts mosquitto; on a restart it reuses the port, so clients reconnect to the same address.
    func start() throws {
        let restarting = port != 0
        for _ in 0..<5 {
            if !restarting { port = try Self.freePort() }
            if try launch() { return }
            usleep(100_000)
        }
        throw Failure.didNotStart(logText)
    }

    /// SIGSTOP: the broker keeps its sockets open but answers nothing.
    func suspend() {
        if let process { kill(process.processIdentifier, SIGSTOP) }
    }

    /// SIGKILL, like a crashed broker or a pulled cable on the broker's side.
    func stop() {
        guard let process else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    private func launch() throws -> Bool {
        let conf = directory.appendingPathComponent("mosquitto.conf")
        let lines = ["persistence false", "log_dest stderr", "listener \(port) 127.0.0.1"] + listenerLines
        try (lines.joined(separator: "\n") + "\n").write(to: conf, atomically: true, encoding: .utf8)
        let logURL = directory.appendingPathComponent("mosquitto.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/mosquitto")
        process.arguments = ["-c", conf.path]
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if !process.isRunning { return false }
            if Self.canConnect(port: port) {
                self.process = process
                return true
            }
            usleep(20_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return false
    }

    static func makeTemporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pantau-mqtt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A port the kernel just handed out for 127.0.0.1 (bind to 0), released for mosquitto to take.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, length) == 0 && getsockname(fd, sa, &length) == 0
            }
        }
        guard bound else { throw Failure.command("cannot bind a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// Runs a command line tool (openssl, mosquitto_passwd) and fails the test with its output if it fails.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], in directory: URL) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure.command("\(executable) \(arguments.joined(separator: " ")) failed: \(output)")
        }
        return output
    }
}

/// Certificates made with openssl for one test: a CA, a server certificate for 127.0.0.1 signed by it, and an
/// unrelated second CA to provoke a verification failure.
struct TestCertificates {
    let directory: URL
    var caFile: String { directory.appendingPathComponent("ca.crt").path }
    var otherCAFile: String { directory.appendingPathComponent("other-ca.crt").path }
    var serverCert: String { directory.appendingPathComponent("server.crt").path }
    var serverKey: String { directory.appendingPathComponent("server.key").path }
    var clientCert: String { directory.appendingPathComponent("client.crt").path }
    var clientKey: String { directory.appendingPathComponent("client.key").path }

    init(in directory: URL) throws {
        self.directory = directory
        let ssl = "/usr/bin/openssl"
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for name in ["ca", "other-ca"] {
            try TestBroker.run(
                ssl,
                ["req", "-x509"] + ec + [
                    "-keyout", "\(name).key", "-out", "\(name).crt", "-days", "2",
                    "-subj", "/CN=Pantau test \(name)",
                ], in: directory)
        }
        try TestBroker.run(
            ssl, ["req"] + ec + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
            in: directory)
        try "subjectAltName=IP:127.0.0.1\n".write(
            to: directory.appendingPathComponent("san.ext"), atomically: true, encoding: .utf8)
        try TestBroker.run(
            ssl,
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.crt", "-days", "2", "-extfile", "san.ext",
            ], in: directory)
        try TestBroker.run(
            ssl, ["req"] + ec + ["-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=gw-01"], in: directory)
        try TestBroker.run(
            ssl,
            [
                "x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "client.crt", "-days", "2",
            ], in: directory)
        // mosquitto may drop privileges or run as another user: the key must be readable.
        chmod(serverKey, 0o644)
    }
}
