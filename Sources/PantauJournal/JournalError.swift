/// A journal failure a technician can act on: what went wrong, with which file.
public struct JournalError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The folder that should hold the journal does not exist.
        case directoryMissing
        /// SQLite could not open or create the file (permissions, a folder in the way).
        case cannotOpen
        /// A read-only reader found no journal at the path.
        case notFound
        /// A commit failed; the group is kept in memory and retried.
        case commitFailed
        /// The journal was closed.
        case closed
        /// Any other SQLite failure.
        case storage
    }

    public var code: Code
    public var message: String
    /// The journal file concerned.
    public var path: String
    /// The SQLite extended result code, when SQLite reported one.
    public var sqliteCode: Int32?

    public init(code: Code, message: String, path: String, sqliteCode: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.sqliteCode = sqliteCode
    }

    init(_ code: Code, _ error: SQLiteError, path: String) {
        self.init(code: code, message: error.description, path: path, sqliteCode: error.code)
    }

    public var description: String { "journal \(path): \(message)" }
}
