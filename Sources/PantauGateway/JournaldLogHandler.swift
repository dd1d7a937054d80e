import Logging
import PantauCore
import PantauPlatform

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A swift-log handler that writes one line per message to stderr, with the `sd-daemon(3)` priority prefix under
/// journald so `journalctl -p warning` and the colours in `journalctl` work, and a timestamp on a terminal instead.
public struct JournaldLogHandler: LogHandler {
    /// How lines are written.
    public enum Style: Sendable, Equatable {
        /// `<6>[label] message key=value`: journald stores the priority and adds its own timestamp.
        case journald
        /// `2026-01-31T08:00:00.250Z info [label] message key=value`, for a technician's terminal.
        case plain

        /// `.journald` when stderr is the stream that systemd named in `$JOURNAL_STREAM`, else `.plain`.
        ///
        /// Comparing the device and inode (as `sd_journal_stream_fd` documentation asks) keeps a child whose stderr
        /// was redirected from writing priority prefixes into a file.
        public static func detect(environment: (String) -> String? = SystemdNotifier.processEnvironment) -> Style {
            guard let value = environment("JOURNAL_STREAM") else { return .plain }
            var info = stat()
            guard fstat(STDERR_FILENO, &info) == 0 else { return .plain }
            return journalStream(value, matchesDevice: UInt64(info.st_dev), inode: UInt64(info.st_ino))
                ? .journald : .plain
        }

        /// True when a `$JOURNAL_STREAM` value (`device:inode`, decimal) names the given file.
        public static func journalStream(_ value: String, matchesDevice device: UInt64, inode: UInt64) -> Bool {
            let parts = value.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let d = UInt64(parts[0]), let i = UInt64(parts[1]) else { return false }
            return d == device && i == inode
        }
    }

    public let label: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let style: Style
    private let clock: any GatewayClock
    private let writeLine: @Sendable (String) -> Void

    /// Creates a handler; tests pass `write` and a fixed `clock` to capture exact lines.
    public init(
        label: String,
        style: Style = .detect(),
        logLevel: Logger.Level = .info,
        metadataProvider: Logger.MetadataProvider? = nil,
        clock: any GatewayClock = SystemClock(),
        write: @escaping @Sendable (String) -> Void = JournaldLogHandler.writeToStandardError
    ) {
        self.label = label
        self.style = style
        self.logLevel = logLevel
        self.metadataProvider = metadataProvider
        self.clock = clock
        self.writeLine = write
    }

    /// Makes every `Logger` in the process use this handler; call once, first thing in `main`.
    public static func bootstrap(
        logLevel: Logger.Level,
        style: Style = .detect(),
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        LoggingSystem.bootstrap(
            { label, provider in
                JournaldLogHandler(label: label, style: style, logLevel: logLevel, metadataProvider: provider)
            },
            metadataProvider: metadataProvider)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let attached = event.metadata { merged.merge(attached) { _, new in new } }
        if let error = event.error { merged["error"] = "\(error)" }
        let line = Self.format(
            style: style, level: event.level, label: label, message: event.message.description, metadata: merged,
            timestamp: style == .plain ? clock.now() : nil)
        writeLine(line)
    }

    /// The `sd-daemon(3)` priority of a level; trace has no syslog equivalent and goes with debug.
    public static func priority(of level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// One log line with its trailing newline; metadata sorted by key so lines are stable and greppable.
    public static func format(
        style: Style,
        level: Logger.Level,
        label: String,
        message: String,
        metadata: Logger.Metadata,
        timestamp: UnixMillis? = nil
    ) -> String {
        var line: String
        switch style {
        case .journald:
            line = "<\(priority(of: level))>"
        case .plain:
            line = timestamp.map { iso8601($0) + " " } ?? ""
            line += "\(level) "
        }
        line += "[\(label)] " + escapingLineBreaks(message)
        for key in metadata.keys.sorted() {
            line += " \(key)=" + quotedIfNeeded(metadata[key].map { "\($0)" } ?? "")
        }
        return line + "\n"
    }

    /// Writes the line with as few `write(2)` calls as possible, so lines from different threads do not interleave.
    @Sendable public static func writeToStandardError(_ line: String) {
        var bytes = Array(line.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }

    /// A line break would start a new journal entry without our priority, so it is written as `\n`.
    private static func escapingLineBreaks(_ text: String) -> String {
        guard text.contains(where: \.isNewline) else { return text }
        var out = ""
        for character in text {
            switch character {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\r\n": out += "\\r\\n"
            default: out.append(character.isNewline ? " " : character)
            }
        }
        return out
    }

    /// Values with blanks, quotes or `=` are quoted (as JSON strings) so `key=value` pairs stay splittable.
    private static func quotedIfNeeded(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0.isWhitespace || $0 == "\"" || $0 == "=" }
        return needsQuotes ? JSONString.quoted(value) : value
    }

    /// UTC in ISO 8601 with milliseconds, computed with `gmtime_r` so the library needs no Foundation.
    private static func iso8601(_ millis: UnixMillis) -> String {
        var seconds = time_t(millis.floorDivided(by: 1000))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let fraction = Int32(millis - millis.floorDivided(by: 1000) * 1000)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(fraction, 3))Z"
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
