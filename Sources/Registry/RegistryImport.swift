/// How far an import has got.
public struct ImportProgress: Sendable, Equatable {
    public var rows = 0
    public var imported = 0
    public var skipped = 0
    public var failed = 0
    public var chunks = 0
}

/// One row the import refused, located by its line in the file.
public struct ImportRowError: Sendable, Equatable {
    public var line: Int
    public var field: String?
    public var reason: String
}

public struct ImportReport: Sendable {
    public var progress: ImportProgress
    /// The first `ImportOptions.maximumReportedErrors` row errors; `progress.failed` counts them all.
    public var errors: [ImportRowError]
}

public struct ImportOptions: Sendable {
    /// Rows per transaction: a crash loses at most the chunk in progress, never part of one.
    public var chunkSize = 1_000
    /// Rows whose account, user or number exists already are counted as skipped, not failed — so an
    /// interrupted import can simply be run again.
    public var skipExisting = false
    public var maximumReportedErrors = 1_000
    public init(chunkSize: Int = 1_000, skipExisting: Bool = false) {
        self.chunkSize = chunkSize
        self.skipExisting = skipExisting
    }
}

/// The columns of an import file. `record` says what a row creates; each kind reads its own columns
/// and the rest must be empty.
public enum ImportColumns {
    public static let all = ["record", "account_id", "name", "status", "time_zone", "plan", "user_id", "display_name", "role",
                             "sip_username", "password", "grants", "number", "kind", "owner", "provider"]
    static let byRecord: [String: Set<String>] = [
        "account": ["record", "account_id", "name", "status", "time_zone", "plan"],
        "user": ["record", "account_id", "user_id", "display_name", "role", "sip_username", "password", "grants"],
        "number": ["record", "account_id", "number", "kind", "owner", "provider"],
    ]
}

extension Registry {
    /// Imports accounts, users and numbers from CSV, one transaction per chunk of rows. A row that
    /// fails is reported with its line and field and undone alone (a savepoint); its chunk still
    /// commits. The registry lock is taken per chunk, so other admin calls interleave with an import.
    public func importCSV(_ reader: inout CSVReader, options: ImportOptions = ImportOptions(),
                          progress report: (ImportProgress) -> Void = { _ in }) throws(RegistryError) -> ImportReport {
        guard (1...100_000).contains(options.chunkSize) else { throw .invalid("chunk_size", "must be from 1 to 100000") }
        guard let header = try reader.next() else { throw .invalid("csv", "the file is empty; the first line names the columns") }
        let columns = header.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        for (index, name) in columns.enumerated() where !ImportColumns.all.contains(name) {
            throw CSVReader.unknownColumn(name, index, known: ImportColumns.all)
        }
        guard columns.contains("record") else { throw .invalid("csv", "line 1: the 'record' column is required") }
        guard Set(columns).count == columns.count else { throw .invalid("csv", "line 1: a column is named twice") }

        var progress = ImportProgress()
        var errors: [ImportRowError] = []
        var done = false
        while !done {
            var chunk: [(line: Int, fields: [String: String])] = []
            while chunk.count < options.chunkSize {
                guard let record = try reader.next() else { done = true; break }
                var fields: [String: String] = [:]
                for (index, value) in record.enumerated() where index < columns.count { fields[columns[index]] = value }
                if record.count > columns.count {
                    fields["\u{0}extra"] = "\(record.count)"
                }
                chunk.append((reader.recordLine, fields))
            }
            if chunk.isEmpty { break }
            let outcome = try withStore { store throws(RegistryError) -> [Result<Bool, RegistryError>] in
                store.touched = Touched()
                let outcome = try store.database.transaction { () throws(RegistryError) -> [Result<Bool, RegistryError>] in
                    chunk.map { row in
                        do throws(RegistryError) {
                            return .success(try store.database.savepoint { () throws(RegistryError) -> Bool in
                                try store.importRow(row.fields, columnCount: columns.count, skipExisting: options.skipExisting)
                            })
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                try publish(store)
                return outcome
            }
            for (row, result) in zip(chunk, outcome) {
                progress.rows += 1
                switch result {
                case .success(true): progress.imported += 1
                case .success(false): progress.skipped += 1
                case .failure(let error):
                    progress.failed += 1
                    if errors.count < options.maximumReportedErrors {
                        errors.append(ImportRowError(line: row.line, field: error.field, reason: error.reason))
                    }
                }
            }
            progress.chunks += 1
            report(progress)
        }
        return ImportReport(progress: progress, errors: errors)
    }
}

extension RegistryStore {
    /// Creates what one row describes; false when it exists and `skipExisting` is set.
    func importRow(_ fields: [String: String], columnCount: Int, skipExisting: Bool) throws(RegistryError) -> Bool {
        if let extra = fields["\u{0}extra"] { throw .invalid("csv", "\(extra) fields, but the header names \(columnCount)") }
        let record = fields["record", default: ""].trimmingCharacters(in: .whitespaces)
        guard let allowed = ImportColumns.byRecord[record] else {
            throw .invalid("record", "'\(record)' is not account, user or number")
        }
        func value(_ name: String) -> String? {
            let text = fields[name]?.trimmingCharacters(in: .whitespaces) ?? ""
            return text.isEmpty ? nil : text
        }
        for (name, text) in fields where !allowed.contains(name) && !text.trimmingCharacters(in: .whitespaces).isEmpty {
            throw .invalid(name, "not a column of \(record) rows")
        }
        func required(_ name: String) throws(RegistryError) -> String {
            guard let text = value(name) else { throw .invalid(name, "required for \(record) rows") }
            return text
        }
        switch record {
        case "account":
            let id = try required("account_id")
            if skipExisting, try count("SELECT count(*) FROM accounts WHERE id = ?", [.text(id)]) > 0 { return false }
            _ = try createAccount(id: id, name: try required("name"),
                                  status: try value("status").map { s throws(RegistryError) in try parseChoice("status", s, as: Account.Status.self) } ?? .active,
                                  timeZone: value("time_zone") ?? "UTC", plan: value("plan"), acting: nil)
        case "user":
            let id = try required("user_id")
            if skipExisting, try count("SELECT count(*) FROM users WHERE id = ?", [.text(id)]) > 0 { return false }
            _ = try createUser(accountID: try required("account_id"), id: id, displayName: try required("display_name"),
                               role: try value("role").map { s throws(RegistryError) in try parseChoice("role", s, as: User.Role.self) } ?? .member,
                               sipUsername: try required("sip_username"), password: value("password"),
                               grants: value("grants").map { $0.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) } },
                               acting: nil)
        default:
            let number = try required("number")
            if skipExisting, try count("SELECT count(*) FROM numbers WHERE number = ?", [.text(number)]) > 0 { return false }
            _ = try createNumber(number, accountID: try required("account_id"),
                                 kind: try value("kind").map { s throws(RegistryError) in try parseChoice("kind", s, as: TelephoneNumber.Kind.self) } ?? .household,
                                 ownerUserID: value("owner"), providerID: value("provider"), acting: nil)
        }
        return true
    }
}
