import CSQLite

/// A failure of the store, with SQLite's own message.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The SQLite file that is Tandem's source of truth: WAL journal, foreign keys on, schema migrated
/// to the newest version on open.
///
/// One connection, confined to the thread or actor that owns the database.
public final class Database {
    private let handle: OpaquePointer
    public let path: String

    /// Schema migrations in order; `PRAGMA user_version` records how many have run. A migration
    /// never changes once released: later schema changes append new ones.
    static let migrations: [String] = [
        """
        CREATE TABLE tandem_meta (
            key   TEXT PRIMARY KEY NOT NULL,
            value TEXT NOT NULL
        ) STRICT;
        INSERT INTO tandem_meta (key, value) VALUES ('created_at', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
        """,
    ]

    public init(path: String) throws(StoreError) {
        var pointer: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &pointer, flags, nil) == SQLITE_OK, let pointer else {
            let reason = pointer.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let pointer { sqlite3_close(pointer) }
            throw StoreError("cannot open \(path): \(reason)")
        }
        handle = pointer
        self.path = path
        sqlite3_busy_timeout(handle, 5_000)
        try execute("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
        try migrate()
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    /// The schema version now in the file.
    public var schemaVersion: Int {
        (try? integer("PRAGMA user_version")) ?? 0
    }

    public var journalMode: String {
        (try? text("PRAGMA journal_mode")) ?? ""
    }

    private func migrate() throws(StoreError) {
        let current = try integer("PRAGMA user_version")
        guard current <= Self.migrations.count else {
            throw StoreError("\(path) has schema version \(current), newer than this Tandem (\(Self.migrations.count))")
        }
        for (index, migration) in Self.migrations.enumerated() where index >= current {
            // Each migration and its version bump commit together or not at all.
            try execute("BEGIN IMMEDIATE")
            do {
                try execute(migration)
                try execute("PRAGMA user_version = \(index + 1)")
                try execute("COMMIT")
            } catch {
                try? execute("ROLLBACK")
                throw StoreError("migration \(index + 1) failed: \(error.reason)")
            }
        }
    }

    public func execute(_ sql: String) throws(StoreError) {
        var message: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(handle, sql, nil, nil, &message) == SQLITE_OK else {
            let reason = message.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(message)
            throw StoreError(reason)
        }
    }

    private func withFirstRow<R>(_ sql: String, _ read: (OpaquePointer) -> R) throws(StoreError) -> R? {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw StoreError(String(cString: sqlite3_errmsg(handle)))
        }
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW else { return nil }
        return read(statement)
    }

    func integer(_ sql: String) throws(StoreError) -> Int {
        try withFirstRow(sql) { Int(sqlite3_column_int64($0, 0)) } ?? 0
    }

    func text(_ sql: String) throws(StoreError) -> String {
        try withFirstRow(sql) { statement in
            sqlite3_column_text(statement, 0).map { String(cString: $0) } ?? ""
        } ?? ""
    }
}

@available(*, unavailable, message: "A Database connection belongs to one thread or actor")
extension Database: Sendable {}
