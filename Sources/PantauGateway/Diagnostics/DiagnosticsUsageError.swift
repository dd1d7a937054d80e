/// A command-line value a diagnostic command cannot use: what is wrong, and what would be accepted.
public struct DiagnosticsUsageError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var hint: String?

    public init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }

    public var description: String { message }
}
