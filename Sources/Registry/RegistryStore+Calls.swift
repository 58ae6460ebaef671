import JSON

/// Which call records `cdr.list` and `cdr.export` return.
public struct CallRecordFilter: Sendable, Equatable {
    /// One call's records (a Call-ID may hold several INVITEs: a retry after a redirect).
    public var callID: String?
    /// The account served or the caller's account.
    public var accountID: String?
    /// The caller, a user offered the call, or the one who answered: a user's call history.
    public var userID: String?
    /// The caller's number, the dialled or normalised number, or a transfer target.
    public var number: String?
    /// Calls started at or after this time (ms since the epoch).
    public var from: Int64?
    /// Calls started before this time.
    public var until: Int64?
    public var disposition: CallRecord.Disposition?
    /// Paging: records with an id above this one (oldest first) or below it (`newestFirst`).
    public var cursor: Int?
    public var newestFirst = false
    public var limit = 100

    public init(callID: String? = nil, accountID: String? = nil, userID: String? = nil, number: String? = nil, from: Int64? = nil, until: Int64? = nil,
                disposition: CallRecord.Disposition? = nil, cursor: Int? = nil, newestFirst: Bool = false, limit: Int = 100) {
        self.callID = callID
        self.accountID = accountID
        self.userID = userID
        self.number = number
        self.from = from
        self.until = until
        self.disposition = disposition
        self.cursor = cursor
        self.newestFirst = newestFirst
        self.limit = limit
    }
}

extension RegistryStore {
    static let cdrColumns = """
        id, call_id, from_tag, to_tag, cseq, caller_number, caller_user_id, caller_account_id, dialled, destination, forwarded_to, \
        decision, account_id, users, answered_user_id, apps, start_time, answer_time, end_time, sip_code, sip_reason, disposition, \
        hangup_by, end_reason, trunk_id
        """

    static func callRecord(_ row: Row) -> CallRecord {
        let users = (try? JSONValue.parse(row.text(13)))?.arrayValue?.compactMap(\.stringValue) ?? []
        let apps = (try? JSONValue.parse(row.text(15)))?.arrayValue?.compactMap(CallRecord.AppLeg.init(json:)) ?? []
        var record = CallRecord(id: row.int(0), callID: row.text(1), fromTag: row.text(2), toTag: row.optionalText(3), cseq: row.int(4),
                          callerNumber: row.optionalText(5), callerUserID: row.optionalText(6), callerAccountID: row.optionalText(7),
                          dialled: row.text(8), destination: row.text(9), forwardedTo: row.optionalText(10),
                          decision: CallRecord.Decision(rawValue: row.text(11)) ?? .accept, accountID: row.optionalText(12),
                          users: users, answeredUserID: row.optionalText(14), apps: apps, startTime: Int64(row.int(16)),
                          answerTime: row.optionalInt(17).map(Int64.init), endTime: Int64(row.int(18)), sipCode: row.int(19),
                          sipReason: row.text(20), disposition: CallRecord.Disposition(rawValue: row.text(21)) ?? .failed,
                          hangupBy: CallRecord.Party(rawValue: row.text(22)) ?? .tandem,
                          endReason: CallRecord.EndReason(rawValue: row.text(23)) ?? .final)
        record.trunkID = row.optionalText(24)
        return record
    }

    /// Remembers a call in progress (or its new state), so a restart can close it.
    public func storeOpenCall(_ call: OpenCall) throws(RegistryError) {
        try sql("INSERT OR REPLACE INTO open_calls (call_id, from_tag, cseq, state, updated_at) VALUES (?, ?, ?, ?, ?)",
                [.text(call.callID), .text(call.fromTag), .int(call.cseq), .text(call.json.description), .integer(clock())])
    }

    /// Writes the record of an ended call and forgets it as open (unless `wasStored` says it never
    /// was), in the caller's transaction. A record already written for the same INVITE is kept and
    /// this one ignored. Returns the new record's id, or nil when it was a duplicate.
    @discardableResult
    public func storeCallRecord(_ record: CallRecord, wasStored: Bool = true) throws(RegistryError) -> Int? {
        if wasStored {
            try sql("DELETE FROM open_calls WHERE call_id = ? AND from_tag = ? AND cseq = ?",
                    [.text(record.callID), .text(record.fromTag), .int(record.cseq)])
        }
        let apps = JSONValue.array(record.apps.map(\.json)).description
        try sql("""
            INSERT INTO cdrs (call_id, from_tag, to_tag, cseq, caller_number, caller_user_id, caller_account_id, dialled, destination,
                forwarded_to, decision, account_id, users, answered_user_id, apps, start_time, answer_time, end_time, setup_ms,
                billable_ms, sip_code, sip_reason, disposition, hangup_by, end_reason, recorded_at, trunk_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (call_id, from_tag, cseq) DO NOTHING
            """, [
                .text(record.callID), .text(record.fromTag), .optional(record.toTag), .int(record.cseq), .optional(record.callerNumber),
                .optional(record.callerUserID), .optional(record.callerAccountID), .text(record.dialled), .text(record.destination),
                .optional(record.forwardedTo), .text(record.decision.rawValue), .optional(record.accountID),
                .text(JSONValue(record.users).description), .optional(record.answeredUserID), .text(apps), .integer(record.startTime),
                record.answerTime.map { .integer($0) } ?? .null, .integer(record.endTime), .integer(record.setupMilliseconds),
                .integer(record.billableMilliseconds), .int(record.sipCode), .text(record.sipReason), .text(record.disposition.rawValue),
                .text(record.hangupBy.rawValue), .text(record.endReason.rawValue), .integer(clock()), .optional(record.trunkID),
            ])
        guard database.changes == 1 else { return nil }
        return database.lastInsertRowID
    }

    /// Closes every call a previous run left open as `interrupted`, ending when that run was last
    /// known alive (`alive_at`, written with every commit of the call log), and returns the records.
    public func closeInterruptedCalls() throws(RegistryError) -> [CallRecord] {
        let aliveAt = Int64(try metaValue("alive_at").flatMap { Int($0) } ?? 0)
        let open = try rows("SELECT state FROM open_calls ORDER BY updated_at", []) { $0.text(0) }
        var closed: [CallRecord] = []
        for state in open {
            guard let json = try? JSONValue.parse(state), let call = OpenCall(json: json) else {
                throw .storage("an open call cannot be read back: \(state.prefix(200))")
            }
            var record = call.record(endTime: max(aliveAt, call.startTime), sipCode: call.answerTime == nil ? 500 : 200,
                                     sipReason: "Interrupted", disposition: .interrupted, hangupBy: .tandem, endReason: .interrupted)
            if let id = try storeCallRecord(record) {
                record.id = id
                closed.append(record)
            }
        }
        try sql("DELETE FROM open_calls")
        return closed
    }

    public func callRecords(_ filter: CallRecordFilter) throws(RegistryError) -> [CallRecord] {
        guard (1...10_000).contains(filter.limit) else { throw .invalid("limit", "must be from 1 to 10000") }
        var conditions: [String] = []
        var values: [SQLValue] = []
        if let callID = filter.callID {
            conditions.append("call_id = ?")
            values.append(.text(callID))
        }
        if let account = filter.accountID {
            conditions.append("(account_id = ? OR caller_account_id = ?)")
            values += [.text(account), .text(account)]
        }
        if let user = filter.userID {
            conditions.append("(caller_user_id = ? OR answered_user_id = ? OR instr(users, ?) > 0)")
            values += [.text(user), .text(user), .text(JSONValue(user).description)]
        }
        if let number = filter.number {
            conditions.append("(caller_number = ? OR destination = ? OR dialled = ? OR forwarded_to = ?)")
            values += Array(repeating: .text(number), count: 4)
        }
        if let from = filter.from {
            conditions.append("start_time >= ?")
            values.append(.integer(from))
        }
        if let until = filter.until {
            conditions.append("start_time < ?")
            values.append(.integer(until))
        }
        if let disposition = filter.disposition {
            conditions.append("disposition = ?")
            values.append(.text(disposition.rawValue))
        }
        if let cursor = filter.cursor {
            conditions.append(filter.newestFirst ? "id < ?" : "id > ?")
            values.append(.int(cursor))
        }
        let condition = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return try rows("SELECT \(Self.cdrColumns) FROM cdrs\(condition) ORDER BY id \(filter.newestFirst ? "DESC" : "ASC") LIMIT ?",
                        values + [.int(filter.limit)], Self.callRecord)
    }

    func metaValue(_ key: String) throws(RegistryError) -> String? {
        try firstRow("SELECT value FROM tandem_meta WHERE key = ?", [.text(key)]) { $0.text(0) }
    }

    func setMetaValue(_ key: String, _ value: String) throws(RegistryError) {
        try sql("INSERT INTO tandem_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [.text(key), .text(value)])
    }

    /// Notes that this run was alive now: an interrupted call ends no later than this.
    public func markAlive() throws(RegistryError) {
        try setMetaValue("alive_at", String(clock()))
    }
}
