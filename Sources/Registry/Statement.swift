import CSQLite

/// A value bound to, or read from, an SQL statement.
enum SQLValue {
    case null
    case integer(Int64)
    case text(String)

    static func optional(_ text: String?) -> SQLValue { text.map { .text($0) } ?? .null }
    static func int(_ value: Int) -> SQLValue { .integer(Int64(value)) }
}

/// One prepared statement, owned by its `Database` and finalized with it (STYLE.md §4).
final class Statement {
    let pointer: OpaquePointer
    unowned let database: Database

    init(database: Database, sql: String) throws(StoreError) {
        var pointer: OpaquePointer?
        guard sqlite3_prepare_v3(database.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &pointer, nil) == SQLITE_OK,
              let pointer else {
            throw StoreError("\(database.lastMessage) in: \(sql)")
        }
        self.pointer = pointer
        self.database = database
    }

    deinit { sqlite3_finalize(pointer) }

    func reset() {
        sqlite3_reset(pointer)
        sqlite3_clear_bindings(pointer)
    }

    func bind(_ values: [SQLValue]) throws(StoreError) {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32 = switch value {
            case .null: sqlite3_bind_null(pointer, index)
            case .integer(let number): sqlite3_bind_int64(pointer, index, number)
            case .text(let text): tandem_sqlite3_bind_text(pointer, index, text, -1)
            }
            guard status == SQLITE_OK else { throw StoreError(database.lastMessage) }
        }
    }

    /// Advances one row; false when done. A constraint failure surfaces as `StoreError.constraint`.
    func step() throws(StoreError) -> Bool {
        switch sqlite3_step(pointer) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let status:
            let message = database.lastMessage
            sqlite3_reset(pointer)
            throw StoreError(message, constraint: status & 0xff == SQLITE_CONSTRAINT)
        }
    }
}

/// A read-only view of the current row.
struct Row {
    let statement: Statement

    func text(_ column: Int32) -> String {
        sqlite3_column_text(statement.pointer, column).map { String(cString: $0) } ?? ""
    }

    func optionalText(_ column: Int32) -> String? {
        sqlite3_column_type(statement.pointer, column) == SQLITE_NULL ? nil : text(column)
    }

    func int(_ column: Int32) -> Int {
        Int(sqlite3_column_int64(statement.pointer, column))
    }

    func optionalInt(_ column: Int32) -> Int? {
        sqlite3_column_type(statement.pointer, column) == SQLITE_NULL ? nil : int(column)
    }
}
