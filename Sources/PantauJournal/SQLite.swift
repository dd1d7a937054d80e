internal import CSQLite

/// A failed SQLite call: the extended result code and SQLite's own message, read at once after the call.
struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// Extended result code (`SQLITE_IOERR_WRITE`, ...); `primary` is the low byte.
    var code: Int32
    var message: String
    /// The statement that failed, when there was one.
    var sql: String?

    var primary: Int32 { code & 0xff }
    /// The disk ran out of space, or the file hit `max_page_count`, or the storage failed a write.
    var isDiskProblem: Bool { primary == SQLITE_FULL || primary == SQLITE_IOERR }
    /// The file is not a database, or its pages are damaged.
    var isCorruption: Bool { primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB }

    var description: String {
        let base = "sqlite error \(code): \(message)"
        return sql.map { "\(base) (in \($0))" } ?? base
    }
}

/// One SQLite connection. The only type (with `SQLiteStatement`) that touches the C API. Opened NOMUTEX, so it is
/// not thread safe: every owner keeps it inside a `Mutex` (hence unchecked: the lock, not the type, serializes it).
final class SQLiteConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    private var cache: [String: SQLiteStatement] = [:]
    /// Statements stepped or executed on this connection, so tests can show an idle journal runs no SQL.
    private(set) var statementsRun = 0

    /// Process-wide settings, applied once before the first connection initializes the library (issue 17).
    private static let libraryConfigured: Bool = pantau_sqlite3_no_page_cache_block() == SQLITE_OK

    init(path: String, readOnly: Bool) throws(SQLiteError) {
        _ = Self.libraryConfigured
        var db: OpaquePointer?
        let flags =
            readOnly
            ? SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
            : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard let db else { throw SQLiteError(code: rc, message: "out of memory opening \(path)", sql: nil) }
        guard rc == SQLITE_OK else {
            let error = SQLiteError(code: sqlite3_extended_errcode(db), message: String(cString: sqlite3_errmsg(db)))
            sqlite3_close_v2(db)
            throw error
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        // A reader and the writer meet on the WAL index; wait for each other briefly instead of failing.
        sqlite3_busy_timeout(db, 5000)
        // A journal is mostly empty: 512 KiB of page cache per connection instead of SQLite's 2 MB default.
        sqlite3_exec(db, "PRAGMA cache_size=-512", nil, nil, nil)
    }

    deinit { close() }

    /// Closes the connection; later calls fail with SQLITE_MISUSE. The last connection to close checkpoints the
    /// WAL into the database and removes it, so the order of closing matters (readers first).
    func close() {
        guard let handle else { return }
        for statement in cache.values { statement.finalize() }
        cache = [:]
        // close_v2 defers the close until every statement is finalized, so order does not matter.
        sqlite3_close_v2(handle)
        self.handle = nil
    }

    private func open() throws(SQLiteError) -> OpaquePointer {
        guard let handle else { throw SQLiteError(code: SQLITE_MISUSE, message: "the connection is closed") }
        return handle
    }

    /// The funnel: every result code from the C API passes here and becomes a typed error.
    @discardableResult
    func check(_ rc: Int32, sql: String? = nil) throws(SQLiteError) -> Int32 {
        if rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE { return rc }
        throw SQLiteError(
            code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)),
            sql: sql)
    }

    /// Runs statements that return no rows we need (DDL, pragmas that set, transaction control).
    fileprivate func countStatement() { statementsRun += 1 }

    func execute(_ sql: String) throws(SQLiteError) {
        statementsRun += 1
        try check(sqlite3_exec(try open(), sql, nil, nil, nil), sql: sql)
    }

    /// A fresh statement, finalized when released.
    func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        var stmt: OpaquePointer?
        try check(sqlite3_prepare_v2(try open(), sql, -1, &stmt, nil), sql: sql)
        guard let stmt else { throw SQLiteError(code: SQLITE_MISUSE, message: "empty statement", sql: sql) }
        return SQLiteStatement(stmt, connection: self, sql: sql)
    }

    /// A statement prepared once per connection and reset before each use: for the hot paths.
    func cached(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let statement = cache[sql] {
            statement.reset()
            return statement
        }
        let statement = try prepare(sql)
        cache[sql] = statement
        return statement
    }

    /// The first column of the first row, as an integer (pragmas, counts); nil when there is no row or it is NULL.
    func scalar(_ sql: String) throws(SQLiteError) -> Int64? {
        let statement = try prepare(sql)
        guard try statement.step(), !statement.isNull(0) else { return nil }
        return statement.int64(0)
    }

    /// The first column of every row, as text (`PRAGMA quick_check`).
    func texts(_ sql: String) throws(SQLiteError) -> [String] {
        let statement = try prepare(sql)
        var out: [String] = []
        while try statement.step() { out.append(statement.text(0) ?? "") }
        return out
    }

    var isInTransaction: Bool { handle.map { sqlite3_get_autocommit($0) == 0 } ?? false }
}

/// A prepared statement. Bind indexes are 1-based, column indexes 0-based, as in SQLite.
final class SQLiteStatement {
    private var stmt: OpaquePointer?
    private let connection: SQLiteConnection
    private let sql: String

    fileprivate init(_ stmt: OpaquePointer, connection: SQLiteConnection, sql: String) {
        self.stmt = stmt
        self.connection = connection
        self.sql = sql
    }

    deinit { finalize() }

    fileprivate func finalize() {
        if let stmt { sqlite3_finalize(stmt) }
        stmt = nil
    }

    func reset() {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
    }

    /// Binds parameters in order, from index 1.
    func bind(_ values: SQLiteValue...) throws(SQLiteError) {
        for (offset, value) in values.enumerated() { try bind(value, at: Int32(offset + 1)) }
    }

    func bind(_ value: SQLiteValue, at index: Int32) throws(SQLiteError) {
        let rc: Int32
        switch value {
        case .null: rc = sqlite3_bind_null(stmt, index)
        case .integer(let v): rc = sqlite3_bind_int64(stmt, index, v)
        case .text(let v): rc = sqlite3_bind_text(stmt, index, v, -1, transient)
        case .blob(let v):
            rc = v.withUnsafeBytes { sqlite3_bind_blob(stmt, index, $0.baseAddress, Int32($0.count), transient) }
        }
        try connection.check(rc, sql: sql)
    }

    /// Advances to the next row; false when the statement is done.
    func step() throws(SQLiteError) -> Bool {
        connection.countStatement()
        return try connection.check(sqlite3_step(stmt), sql: sql) == SQLITE_ROW
    }

    /// Steps a statement that returns no rows.
    func run() throws(SQLiteError) {
        while try step() {}
    }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(stmt, column) == SQLITE_NULL }
    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(stmt, column) }

    func text(_ column: Int32) -> String? {
        guard let p = sqlite3_column_text(stmt, column) else { return nil }
        return String(cString: p)
    }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(stmt, column))
        guard count > 0, let p = sqlite3_column_blob(stmt, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: count))
    }
}

/// A value bound to a statement parameter.
enum SQLiteValue {
    case null
    case integer(Int64)
    case text(String)
    case blob([UInt8])

    static func optionalText(_ value: String?) -> SQLiteValue { value.map(SQLiteValue.text) ?? .null }
}

/// SQLITE_TRANSIENT: SQLite copies the bound bytes before the call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
