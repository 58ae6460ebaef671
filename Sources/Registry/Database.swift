import CSQLite

/// A failure of the store, with SQLite's own message.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    /// A UNIQUE, FOREIGN KEY or CHECK constraint refused the change.
    public var constraint: Bool
    public init(_ reason: String, constraint: Bool = false) {
        self.reason = reason
        self.constraint = constraint
    }
    public var description: String { reason }
}

/// The SQLite file that is Tandem's source of truth: WAL journal, foreign keys on, schema migrated
/// to the newest version on open.
///
/// One connection, confined to the thread or actor that owns the database.
public final class Database {
    let handle: OpaquePointer
    /// Prepared statements by SQL text: provisioning runs the same few statements over and over.
    private var statements: [String: Statement] = [:]
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
        Schema.registry,
        Schema.location,
        Schema.routing,
        Schema.calls,
        Schema.usage,
        Schema.events,
        Schema.trunkRates,
        Schema.presence,
        Schema.messages,
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
        statements.removeAll()
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

    /// The rowid of the last row inserted on this connection.
    var lastInsertRowID: Int { Int(sqlite3_last_insert_rowid(handle)) }

    /// Rows changed by the last INSERT, UPDATE or DELETE that completed.
    var changes: Int { Int(sqlite3_changes(handle)) }

    /// A cached prepared statement, reset and with its bindings cleared.
    func prepare(_ sql: String) throws(StoreError) -> Statement {
        if let statement = statements[sql] {
            statement.reset()
            return statement
        }
        let statement = try Statement(database: self, sql: sql)
        statements[sql] = statement
        return statement
    }

    /// Runs `sql` with `values` bound to its `?` parameters, for statements that return no rows.
    func run(_ sql: String, _ values: [SQLValue] = []) throws(StoreError) {
        let statement = try prepare(sql)
        try statement.bind(values)
        while try statement.step() {}
    }

    /// Every row of `sql` with `values` bound, each read by `read`.
    func rows<R>(_ sql: String, _ values: [SQLValue] = [], _ read: (Row) throws(StoreError) -> R) throws(StoreError) -> [R] {
        let statement = try prepare(sql)
        try statement.bind(values)
        var result: [R] = []
        while try statement.step() {
            result.append(try read(Row(statement: statement)))
        }
        return result
    }

    func firstRow<R>(_ sql: String, _ values: [SQLValue] = [], _ read: (Row) throws(StoreError) -> R) throws(StoreError) -> R? {
        let statement = try prepare(sql)
        try statement.bind(values)
        guard try statement.step() else { return nil }
        let row = try read(Row(statement: statement))
        statement.reset()
        return row
    }

    func count(_ sql: String, _ values: [SQLValue] = []) throws(StoreError) -> Int {
        try firstRow(sql, values) { $0.int(0) } ?? 0
    }

    var lastMessage: String { String(cString: sqlite3_errmsg(handle)) }

    /// Runs a statement with no result through the statement cache: BEGIN, COMMIT and savepoints
    /// run on every write, and `sqlite3_exec` would parse them each time.
    private func control(_ sql: String) throws(StoreError) {
        let statement = try prepare(sql)
        while try statement.step() {}
    }

    /// Runs `body` in one transaction: it commits when `body` returns and rolls back when it throws,
    /// so an admin call is all or nothing.
    func transaction<R>(_ body: () throws(RegistryError) -> R) throws(RegistryError) -> R {
        do { try control("BEGIN IMMEDIATE") } catch { throw RegistryError.storage(error.reason) }
        do throws(RegistryError) {
            let result = try body()
            do { try control("COMMIT") } catch { throw RegistryError.storage(error.reason) }
            return result
        } catch {
            try? control("ROLLBACK")
            throw error
        }
    }

    /// A savepoint inside a transaction: one import row that fails undoes only itself.
    func savepoint<R>(_ body: () throws(RegistryError) -> R) throws(RegistryError) -> R {
        do { try control("SAVEPOINT row") } catch { throw RegistryError.storage(error.reason) }
        do throws(RegistryError) {
            let result = try body()
            try? control("RELEASE row")
            return result
        } catch {
            try? control("ROLLBACK TO row")
            try? control("RELEASE row")
            throw error
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
