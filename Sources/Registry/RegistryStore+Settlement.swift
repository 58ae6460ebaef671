import JSON

extension RegistryStore {
    static func settlementPeriod(_ row: Row) -> SettlementPeriod {
        SettlementPeriod(period: row.text(0), closed: row.text(1) == "closed", runAt: row.text(2), closedAt: row.optionalText(3))
    }

    public func settlementPeriod(_ period: String) throws(RegistryError) -> SettlementPeriod? {
        try firstRow("SELECT period, status, run_at, closed_at FROM settlement_periods WHERE period = ?", [.text(period)], Self.settlementPeriod)
    }

    public func settlementPeriods() throws(RegistryError) -> [SettlementPeriod] {
        try rows("SELECT period, status, run_at, closed_at FROM settlement_periods ORDER BY period", [], Self.settlementPeriod)
    }

    /// Reads what a month is settled from: its history up to `end` and its tickets from `start`, with
    /// the tickets of closed months that no other month took (a record that arrived after its month
    /// was closed goes to the next month run).
    public func settlementHistory(start: Int64, end: Int64) throws(RegistryError) -> SettlementHistory {
        var history = SettlementHistory()
        let endTime = Timestamp.rfc3339(milliseconds: end)
        for event in try rows("SELECT type, subject, payload, time FROM events WHERE type IN ('app.activated', 'app.deactivated') AND time < ? ORDER BY id",
                              [.text(endTime)], { ($0.text(0), $0.text(1), $0.text(2), $0.text(3)) }) {
            guard let payload = try? JSONValue.parse(event.2), let app = payload["app"]?.stringValue, let provider = payload["provider"]?.stringValue,
                  let time = Timestamp.milliseconds(rfc3339: event.3) else { continue }
            history.activations.append(.init(number: event.1, appID: app, providerID: provider, active: event.0 == "app.activated", time: time))
        }
        // Every switch, including those recorded after the month: a number switched on 3 December was
        // the old carrier's for all of November, and only the switch's `from` says who that was.
        for event in try rows("SELECT subject, payload, time FROM events WHERE type = 'number.provider_switched' ORDER BY id",
                              [], { ($0.text(0), $0.text(1), $0.text(2)) }) {
            guard let payload = try? JSONValue.parse(event.1), let to = payload["to"]?.stringValue,
                  let time = Timestamp.milliseconds(rfc3339: event.2) else { continue }
            history.carriers.append(.init(number: event.0, from: payload["from"]?.stringValue, to: to, time: time))
        }
        for (number, account, carrier) in try rows("SELECT number, account_id, provider_id FROM numbers", [], { ($0.text(0), $0.text(1), $0.optionalText(2)) }) {
            history.numbers[number] = (accountID: account, carrier: carrier)
        }
        for (id, rates) in try rows("SELECT id, currency, rate_per_minute, monthly_fee FROM providers", [], {
            ($0.text(0), SettlementHistory.Rates(currency: $0.text(1), perMinute: $0.int(2), monthlyFee: $0.int(3)))
        }) {
            history.rates[id] = rates
        }
        history.tickets = try rows("""
            SELECT \(Self.ticketColumns) FROM service_tickets
            WHERE start_time < ? AND (start_time >= ? OR (
                id NOT IN (SELECT ticket_id FROM settled_tickets WHERE period <> ?)
                AND strftime('%Y-%m', start_time / 1000, 'unixepoch') IN (SELECT period FROM settlement_periods WHERE status = 'closed')))
            ORDER BY id
            """, [.integer(end), .integer(start), .text(Timestamp.rfc3339(milliseconds: start).prefix(7).description)], Self.ticket)
        // Interrupted calls are left out, as they are of tickets: their end is not known.
        history.trunkCalls = try rows("""
            SELECT id, caller_number, trunk_id, destination, start_time, billable_ms FROM cdrs
            WHERE trunk_id IS NOT NULL AND disposition = 'answered' AND start_time < ? AND (start_time >= ? OR (
                id NOT IN (SELECT cdr_id FROM settled_calls WHERE period <> ?)
                AND strftime('%Y-%m', start_time / 1000, 'unixepoch') IN (SELECT period FROM settlement_periods WHERE status = 'closed')))
            ORDER BY id
            """, [.integer(end), .integer(start), .text(Timestamp.rfc3339(milliseconds: start).prefix(7).description)]) {
            SettlementHistory.TrunkCall(cdrID: $0.int(0), number: $0.optionalText(1) ?? "", trunkID: $0.text(2), destination: $0.text(3),
                                        startTime: Int64($0.int(4)), billableMilliseconds: Int64($0.int(5)))
        }
        history.trunkRates = try allTrunkRates()
        return history
    }

    /// Replaces an open month's lines with `lines` (settled from `tickets` and the records `calls`), in
    /// one transaction: a rerun gives the same rows, never more. A closed month is refused.
    public func storeSettlement(period: String, lines: [SettlementLine], tickets: [Int], calls: [Int] = []) throws(RegistryError) {
        if let existing = try settlementPeriod(period), existing.closed {
            throw .conflict("period", "\(period) is closed: its settlement can no longer change")
        }
        try sql("DELETE FROM settlement_lines WHERE period = ?", [.text(period)])
        try sql("DELETE FROM settled_tickets WHERE period = ?", [.text(period)])
        try sql("DELETE FROM settled_calls WHERE period = ?", [.text(period)])
        for line in lines {
            try sql("""
                INSERT INTO settlement_lines (period, payer_id, payee_id, number, account_id, app_id, kind, destination, quantity, unit_price,
                    amount, currency, note)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(period), .text(line.payerID), .text(line.payeeID), .text(line.number), .text(line.accountID), .text(line.appID),
                      .text(line.kind.rawValue), .text(line.destination), .int(line.quantity), .int(line.unitPrice), .int(line.amount), .text(line.currency), .text(line.note)])
        }
        for ticket in tickets {
            try sql("INSERT OR IGNORE INTO settled_tickets (ticket_id, period) VALUES (?, ?)", [.int(ticket), .text(period)])
        }
        for call in calls {
            try sql("INSERT OR IGNORE INTO settled_calls (cdr_id, period) VALUES (?, ?)", [.int(call), .text(period)])
        }
        try sql("""
            INSERT INTO settlement_periods (period, status, run_at) VALUES (?, 'open', ?)
            ON CONFLICT (period) DO UPDATE SET run_at = excluded.run_at
            """, [.text(period), .text(timestamp())])
    }

    public func closeSettlement(period: String) throws(RegistryError) -> SettlementPeriod {
        guard var existing = try settlementPeriod(period) else { throw .notFound("period", "\(period) has not been run (settlement.run)") }
        guard !existing.closed else { throw .conflict("period", "\(period) is already closed") }
        existing.closed = true
        existing.closedAt = timestamp()
        try sql("UPDATE settlement_periods SET status = 'closed', closed_at = ? WHERE period = ?", [.optional(existing.closedAt), .text(period)])
        return existing
    }

    public func settlementLines(period: String, payer: String? = nil, payee: String? = nil, number: String? = nil,
                                accountID: String? = nil) throws(RegistryError) -> [SettlementLine] {
        var conditions = ["period = ?"]
        var values: [SQLValue] = [.text(period)]
        if let payer { conditions.append("payer_id = ?"); values.append(.text(payer)) }
        if let payee { conditions.append("payee_id = ?"); values.append(.text(payee)) }
        if let number { conditions.append("number = ?"); values.append(.text(number)) }
        if let accountID { conditions.append("account_id = ?"); values.append(.text(accountID)) }
        return try rows("""
            SELECT period, payer_id, payee_id, number, account_id, app_id, kind, quantity, unit_price, amount, currency, note, destination
            FROM settlement_lines WHERE \(conditions.joined(separator: " AND ")) ORDER BY payer_id, payee_id, number, app_id, kind, destination
            """, values) {
            SettlementLine(period: $0.text(0), payerID: $0.text(1), payeeID: $0.text(2), number: $0.text(3), accountID: $0.text(4),
                           appID: $0.text(5), kind: SettlementLine.Kind(rawValue: $0.text(6)) ?? .usage, destination: $0.text(12),
                           quantity: $0.int(7), unitPrice: $0.int(8), amount: $0.int(9), currency: $0.text(10), note: $0.text(11))
        }
    }
}
