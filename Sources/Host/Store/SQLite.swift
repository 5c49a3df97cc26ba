// A thin Swift layer over SQLite's C API for the run store: open a database, run statements with bound values,
// read rows. Errors carry SQLite's own message and the statement.
import CSQLite
import Foundation

/// An SQLite error: what failed and SQLite's message.
struct SQLiteError: Error, CustomStringConvertible {
    let description: String
}

/// A value bound to a statement's parameter or read from a column.
enum SQLValue: Equatable {
    case null, integer(Int64), real(Double), text(String)

    var string: String? { if case .text(let s) = self { return s }; return nil }
    var int: Int64? {
        switch self { case .integer(let i): return i; case .real(let d): return Int64(d); default: return nil }
    }
    var double: Double? {
        switch self { case .real(let d): return d; case .integer(let i): return Double(i); default: return nil }
    }
}

/// One open SQLite database connection (used from one thread at a time).
final class SQLiteDatabase {
    private(set) var handle: OpaquePointer?
    let path: String

    /// Opens (creating when missing) the database at `path`; waits up to `busyTimeout` seconds for a lock that
    /// another connection holds before giving up.
    init(path: String, busyTimeout: Double = 30) throws {
        self.path = path
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw SQLiteError(description: "cannot open \(path): \(msg)")
        }
        handle = db
        sqlite3_busy_timeout(db, Int32(busyTimeout * 1000))
    }

    deinit { sqlite3_close(handle) }

    /// Runs one or more statements without parameters or results.
    func execute(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(handle, sql, nil, nil, &err) != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? "error"
            sqlite3_free(err)
            throw SQLiteError(description: "\(path): \(msg) (in: \(sql.prefix(80)))")
        }
    }

    /// Runs `sql` with `values` bound to its parameters in order; returns its rows.
    @discardableResult
    func query(_ sql: String, _ values: [SQLValue] = []) throws -> [[SQLValue]] {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else {
            throw SQLiteError(description: "\(path): \(message) (in: \(sql.prefix(80)))")
        }
        defer { sqlite3_finalize(stmt) }
        for (i, v) in values.enumerated() {
            let n = Int32(i + 1)
            switch v {
            case .null: sqlite3_bind_null(stmt, n)
            case .integer(let x): sqlite3_bind_int64(stmt, n, x)
            case .real(let x): sqlite3_bind_double(stmt, n, x)
            case .text(let s): _ = s.withCString { refrain_sqlite3_bind_text(stmt, n, $0, Int32(strlen($0))) }
            }
        }
        var rows: [[SQLValue]] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw SQLiteError(description: "\(path): \(message) (in: \(sql.prefix(80)))") }
            rows.append((0..<sqlite3_column_count(stmt)).map { column(stmt, $0) })
        }
        return rows
    }

    private func column(_ stmt: OpaquePointer, _ i: Int32) -> SQLValue {
        switch sqlite3_column_type(stmt, i) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(stmt, i))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(stmt, i))
        case SQLITE_NULL: return .null
        default:
            guard let p = sqlite3_column_text(stmt, i) else { return .null }
            let n = Int(sqlite3_column_bytes(stmt, i))
            return .text(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self))
        }
    }

    /// The row id the last insert made.
    var lastInsertID: Int64 { sqlite3_last_insert_rowid(handle) }

    private var message: String { String(cString: sqlite3_errmsg(handle)) }

    /// Runs `body` in one write transaction (BEGIN IMMEDIATE, so that a writer waits for the lock up front rather
    /// than failing half-way); rolls back when it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let r = try body()
            try execute("COMMIT")
            return r
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}
